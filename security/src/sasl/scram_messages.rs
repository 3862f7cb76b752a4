//! The grammar of SCRAM's client messages (RFC 5802 §7), limited to what Kafka accepts: no
//! channel binding, no mandatory extensions. Errors are descriptions for the client.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// client-first-message: `n,[a=<authzid>],n=<saslname>,r=<nonce>[,<ext>=<value>...]`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ClientFirst<'a> {
    /// `n,,` or `n,a=<authzid>,`: client-final's `c=` must be exactly its base64.
    pub gs2_header: &'a str,
    /// The authorization id, unescaped.
    pub authzid: Option<String>,
    /// The user name, unescaped.
    pub user: String,
    /// The client's nonce.
    pub nonce: &'a str,
    /// Everything after the GS2 header: the start of AuthMessage.
    pub bare: &'a str,
    /// Extension `tokenauth=true`: a delegation-token login.
    pub token_auth: bool,
}

/// client-final-message: `c=<base64 gs2 header>,r=<nonce>[,<ext>=<value>...],p=<base64 proof>`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ClientFinal<'a> {
    /// `c=`, decoded.
    pub channel_binding: Vec<u8>,
    /// `r=`: must be the client's nonce followed by the server's.
    pub nonce: &'a str,
    /// Everything before `,p=`: the end of AuthMessage.
    pub without_proof: &'a str,
    /// `p=`, decoded.
    pub proof: Vec<u8>,
}

pub(super) fn parse_client_first(message: &str) -> Result<ClientFirst<'_>, String> {
    let Some(rest) = message.strip_prefix("n,") else {
        return Err(if message.starts_with("y,") || message.starts_with("p=") {
            "channel binding is not supported, the GS2 flag must be 'n'".to_owned()
        } else {
            "expected the GS2 flag 'n' first".to_owned()
        });
    };
    let (authzid, bare) = rest.split_once(',').ok_or("the GS2 header does not end with ','")?;
    let gs2_header = &message[..message.len() - bare.len()];
    let authzid = match authzid {
        "" => None,
        authzid => Some(decode_saslname(attribute(authzid, 'a')?)?),
    };
    let mut attributes = bare.split(',');
    let user = attributes.next().unwrap_or_default();
    if user.starts_with("m=") {
        return Err("mandatory extensions (m=) are not supported".to_owned());
    }
    let user = decode_saslname(attribute(user, 'n')?)?;
    let nonce = attribute(attributes.next().unwrap_or_default(), 'r')?;
    if !nonce.bytes().all(|byte| (0x21..=0x7E).contains(&byte)) {
        return Err("the nonce must be printable ASCII".to_owned());
    }
    let mut token_auth = false;
    for extension in attributes {
        let (key, value) = parse_extension(extension)?;
        // Kafka reads the flag with Java's Boolean.parseBoolean, which ignores case.
        token_auth |= key == "tokenauth" && value.eq_ignore_ascii_case("true");
    }
    Ok(ClientFirst { gs2_header, authzid, user, nonce, bare, token_auth })
}

pub(super) fn parse_client_final(message: &str) -> Result<ClientFinal<'_>, String> {
    let (without_proof, proof) = message.rsplit_once(',').ok_or("expected 'c=', 'r=' and 'p='")?;
    let proof = decode_base64(attribute(proof, 'p')?, 'p')?;
    let mut attributes = without_proof.split(',');
    let channel_binding = decode_base64(attribute(attributes.next().unwrap_or_default(), 'c')?, 'c')?;
    let nonce = attribute(attributes.next().unwrap_or_default(), 'r')?;
    for extension in attributes {
        parse_extension(extension)?;
    }
    Ok(ClientFinal { channel_binding, nonce, without_proof, proof })
}

/// The value of `<name>=<value>`; values are never empty.
fn attribute(text: &str, name: char) -> Result<&str, String> {
    match text.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("expected a non-empty '{name}=' attribute")),
    }
}

/// `<key>=<value>` with an alphabetic key, as Kafka's grammar has it.
fn parse_extension(text: &str) -> Result<(&str, &str), String> {
    match text.split_once('=') {
        Some((key, value))
            if !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_alphabetic()) && !value.is_empty() =>
        {
            Ok((key, value))
        }
        _ => Err("an extension must be '<letters>=<value>'".to_owned()),
    }
}

/// RFC 5802's saslname: `,` travels as `=2C` and `=` as `=3D`; any other `=` is invalid.
fn decode_saslname(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("a name must not contain NUL".to_owned());
    }
    let mut name = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        name.push_str(&rest[..at]);
        let escaped = &rest[at..];
        rest = if let Some(after) = escaped.strip_prefix("=2C") {
            name.push(',');
            after
        } else if let Some(after) = escaped.strip_prefix("=3D") {
            name.push('=');
            after
        } else {
            return Err("'=' in a name must start '=2C' or '=3D'".to_owned());
        };
    }
    name.push_str(rest);
    Ok(name)
}

fn decode_base64(text: &str, name: char) -> Result<Vec<u8>, String> {
    BASE64.decode(text).map_err(|_| format!("'{name}=' is not valid base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_as_librdkafka_sends_it() {
        let first = parse_client_first("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(
            first,
            ClientFirst {
                gs2_header: "n,,",
                authzid: None,
                user: "user".to_owned(),
                nonce: "fyko+d2lbbFgONRv9qkxdawL",
                bare: "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                token_auth: false,
            }
        );
    }

    #[test]
    fn client_first_unescapes_names_and_keeps_the_authzid_header() {
        let first = parse_client_first("n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc,unknown=1").unwrap();
        assert_eq!(first.gs2_header, "n,a=a=2Cb=3Dc,");
        assert_eq!(first.authzid.as_deref(), Some("a,b=c"));
        assert_eq!(first.user, "a,b=c");
        assert_eq!(first.bare, "n=a=2Cb=3Dc,r=abc,unknown=1");
        assert!(!first.token_auth);
    }

    #[test]
    fn client_first_sees_the_tokenauth_extension_in_any_case() {
        assert!(parse_client_first("n,,n=id,r=abc,tokenauth=true").unwrap().token_auth);
        assert!(parse_client_first("n,,n=id,r=abc,x=1,tokenauth=TRUE").unwrap().token_auth);
        assert!(!parse_client_first("n,,n=id,r=abc,tokenauth=false").unwrap().token_auth);
    }

    #[test]
    fn client_first_refuses_what_kafka_refuses() {
        for message in [
            "",
            "y,,n=user,r=abc",
            "p=tls-unique,,n=user,r=abc",
            "n,",
            "n,x=user,n=user,r=abc",
            "n,,m=ext,n=user,r=abc",
            "n,,n=,r=abc",
            "n,,n=us=er,r=abc",
            "n,,n=us=2cer,r=abc",
            "n,,n=us\0er,r=abc",
            "n,,n=user",
            "n,,n=user,r=",
            "n,,n=user,r=ab c",
            "n,,n=user,r=abé",
            "n,,r=abc,n=user",
            "n,,n=user,r=abc,1=2",
            "n,,n=user,r=abc,key=",
            "n,,n=user,r=abc,",
        ] {
            assert!(parse_client_first(message).is_err(), "{message:?}");
        }
    }

    #[test]
    fn client_final_splits_off_the_proof() {
        let last = parse_client_final("c=biws,r=abcdef,ext=1,p=AAEC").unwrap();
        assert_eq!(
            last,
            ClientFinal {
                channel_binding: b"n,,".to_vec(),
                nonce: "abcdef",
                without_proof: "c=biws,r=abcdef,ext=1",
                proof: vec![0, 1, 2],
            }
        );
    }

    #[test]
    fn client_final_refuses_malformed_messages() {
        for message in [
            "",
            "c=biws,r=abc",
            "c=biws,p=AAEC",
            "r=abc,c=biws,p=AAEC",
            "c=biws,r=abc,p=AAEC,x=1",
            "c=b!ws,r=abc,p=AAEC",
            "c=biws,r=abc,p=AAE",
            "c=biws,r=abc,p=",
            "c=biws,r=,p=AAEC",
            "c=biws,r=abc,=x,p=AAEC",
        ] {
            assert!(parse_client_final(message).is_err(), "{message:?}");
        }
    }
}
