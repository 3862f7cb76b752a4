//! `sluice user list|describe|create|delete`: SCRAM users over the Kafka protocol
//! (DescribeUserScramCredentials, AlterUserScramCredentials: KIP-554), like
//! `kafka-configs.sh --entity-type users`, for a remote super user (`sluice admin user` is
//! the local way, for the first one).
//!
//! As librdkafka does, the password never leaves this process: `create` draws a random salt,
//! computes SaltedPassword (Hi, RFC 5802) here and sends the salt and SaltedPassword, from
//! which the broker derives StoredKey and ServerKey.

use crate::client_args::{run_client, BrokerArgs};
use crate::table::print_table;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{ClientError, KafkaConnection};
use sluice_security::sasl::{generate_salt, salted_password, ScramMechanism};

/// SCRAM user administration.
#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Every user with its mechanisms and iteration counts.
    List,
    /// Some users' mechanisms and iteration counts.
    Describe {
        /// User names.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Create a user's credential for a mechanism, or replace it; the password is read from
    /// standard input.
    Create {
        /// The user name (principal `User:NAME`).
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_parser = parse_scram_mechanism)]
        mechanism: ScramMechanism,
        /// Iterations of Hi (4096–16384, Kafka's bounds).
        #[arg(long, default_value_t = ScramMechanism::MIN_ITERATIONS,
              value_parser = clap::value_parser!(u32).range(
                  ScramMechanism::MIN_ITERATIONS as i64..=ScramMechanism::MAX_ITERATIONS as i64))]
        iterations: u32,
        /// Read the password from standard input (its first line); required, as in `sluice
        /// admin user create`, so that it never shows up in the process list or shell history.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete a user's credential for a mechanism.
    Delete {
        /// The user name.
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_parser = parse_scram_mechanism)]
        mechanism: ScramMechanism,
    },
}

fn parse_scram_mechanism(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(name)
        .ok_or_else(|| format!("unknown SCRAM mechanism {name:?}: expected SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Runs a user subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: UserCommand) -> Result<(), String> {
    // Read before the executor starts: a blocking read has no place on it.
    let password = match &command {
        UserCommand::Create { .. } => Some(crate::admin_cmd::read_password()?),
        _ => None,
    };
    run_client(move || async move {
        let mut connection = brokers.connect().await?;
        match command {
            UserCommand::List => describe(&mut connection, None).await,
            UserCommand::Describe { users } => describe(&mut connection, Some(&users)).await,
            UserCommand::Create { user, mechanism, iterations, .. } => {
                let password = password.expect("read above");
                create(&mut connection, &user, mechanism, iterations, &password).await
            }
            UserCommand::Delete { user, mechanism } => delete(&mut connection, &user, mechanism).await,
        }
        .map_err(|e| e.to_string())
    })
}

/// Prints a table of users' credentials: all users (`None`) or the ones named. A named user
/// without credentials is an error after the table (RESOURCE_NOT_FOUND, as Kafka answers).
async fn describe(connection: &mut KafkaConnection, users: Option<&[String]>) -> Result<(), ClientError> {
    let names = users.map(|users| users.iter().map(|u| UserName::default().with_name(str_bytes(u))).collect());
    let response = connection.send(&DescribeUserScramCredentialsRequest::default().with_users(names)).await?;
    ClientError::check(|| "describe SCRAM users".to_string(), response.error_code, response.error_message.as_ref())?;
    let mut rows = Vec::new();
    let mut failure = Ok(());
    for result in &response.results {
        let user = result.user.as_str();
        let checked =
            ClientError::check(|| format!("describe user {user}"), result.error_code, result.error_message.as_ref());
        if let Err(error) = checked {
            if let Err(earlier) = std::mem::replace(&mut failure, Err(error)) {
                eprintln!("sluice: {earlier}");
            }
            continue;
        }
        for info in &result.credential_infos {
            let mechanism = ScramMechanism::from_code(info.mechanism).map_or("UNKNOWN", ScramMechanism::name);
            rows.push(vec![user.to_string(), mechanism.to_string(), info.iterations.to_string()]);
        }
    }
    rows.sort();
    print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
    failure
}

async fn create(
    connection: &mut KafkaConnection,
    user: &str,
    mechanism: ScramMechanism,
    iterations: u32,
    password: &str,
) -> Result<(), ClientError> {
    let salt = generate_salt();
    let salted = salted_password(mechanism, password, &salt, iterations);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(str_bytes(user))
        .with_mechanism(mechanism.code())
        .with_iterations(iterations as i32)
        .with_salt(salt.into())
        .with_salted_password(salted.into());
    alter(connection, AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]), "create", user)
        .await?;
    println!("created the {} credential of user {user}", mechanism.name());
    Ok(())
}

async fn delete(connection: &mut KafkaConnection, user: &str, mechanism: ScramMechanism) -> Result<(), ClientError> {
    let deletion = ScramCredentialDeletion::default().with_name(str_bytes(user)).with_mechanism(mechanism.code());
    alter(connection, AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]), "delete", user)
        .await?;
    println!("deleted the {} credential of user {user}", mechanism.name());
    Ok(())
}

/// Sends one user's change; the broker's per-user error becomes the command's.
async fn alter(
    connection: &mut KafkaConnection,
    request: AlterUserScramCredentialsRequest,
    action: &str,
    user: &str,
) -> Result<(), ClientError> {
    let response = connection.send(&request).await?;
    let result = response.results.iter().find(|r| r.user.as_str() == user).ok_or_else(|| ClientError::Protocol {
        address: connection.address().to_string(),
        reason: format!("AlterUserScramCredentials does not mention user {user}"),
    })?;
    ClientError::check(|| format!("{action} user {user}"), result.error_code, result.error_message.as_ref())
}
