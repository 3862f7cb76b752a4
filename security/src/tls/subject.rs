//! A certificate's subject as Java's `X500Principal.getName()` writes it (RFC 2253 form).
//!
//! Kafka's SSL principal is this string (then rewritten by `ssl.principal.mapping.rules`),
//! so ACLs and mapping rules written for a Kafka cluster match the same clients here only
//! if every character agrees. Hence this copies the JDK's `sun.security.x509.AVA
//! .toRFC2253String` rather than any RFC 2253 printer, quirks included:
//! - RDNs in reverse order of the DER sequence, joined by `,`; the attributes of a
//!   multi-valued RDN in DER order, joined by `+`.
//! - Keywords only for CN, C, L, ST, O, OU, STREET, DC and UID; any other attribute as its
//!   dotted OID, and then its value always as `#` + lowercase hex of its DER encoding.
//! - Values of the types PrintableString, UTF8String, IA5String, T61String, GeneralString
//!   and BMPString as text; of any other type (UniversalString, VisibleString, ...) as hex.
//! - Escaping with a backslash: `, = + < > # ; " \` anywhere in the value (RFC 2253 asks
//!   only for `#` at the start and not for `=`; the JDK escapes both everywhere), NUL as
//!   `\00`, and every leading and trailing space or carriage return.
//!
//! Text is decoded as JDK 25 does: UTF8String as UTF-8, BMPString as UTF-16, the other
//! string types one byte per character (ISO 8859-1). JDK 17 differs only there: it reads
//! the bytes of every string type as UTF-8, so a non-ASCII byte in a PrintableString,
//! IA5String or T61String becomes U+FFFD and a BMPString gives `\00a\00b` for "ab". Client
//! certificates made by OpenSSL or rcgen use UTF8String or PrintableString with ASCII text,
//! where both agree. (Checked with OpenJDK 17.0.15 and Temurin 25.0.3.)

use x509_parser::asn1_rs::{Any, Class, Tag, ToDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AttributeTypeAndValue, RelativeDistinguishedName, X509Name};

use super::TlsError;

/// The JDK's RFC 2253 keywords (`AVAKeyword` entries marked RFC 2253 compliant), by OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of the DER certificate `cert_der` (for a TLS peer: its chain's element 0,
/// the leaf) as Java's `X500Principal.getName()` gives it — the principal name Kafka uses
/// with the mapping rule `DEFAULT`. For example, the certificate made with
/// `openssl req -subj "/O=Sluice/OU=Test/CN=alice"` gives `CN=alice,OU=Test,O=Sluice`.
pub fn subject_rfc2253(cert_der: &[u8]) -> Result<String, TlsError> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| TlsError::Subject { reason: e.to_string() })?;
    name_rfc2253(cert.subject())
}

/// `name` in the JDK's RFC 2253 form (see the module comment).
fn name_rfc2253(name: &X509Name<'_>) -> Result<String, TlsError> {
    let rdns = name.iter_rdn().collect::<Vec<_>>();
    let mut out = String::with_capacity(name.as_raw().len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_rdn(rdn, &mut out)?;
    }
    Ok(out)
}

fn write_rdn(rdn: &RelativeDistinguishedName<'_>, out: &mut String) -> Result<(), TlsError> {
    for (i, attribute) in rdn.iter().enumerate() {
        if i > 0 {
            out.push('+');
        }
        write_attribute(attribute, out)?;
    }
    Ok(())
}

fn write_attribute(attribute: &AttributeTypeAndValue<'_>, out: &mut String) -> Result<(), TlsError> {
    let oid = attribute.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(known, _)| *known == oid).map(|(_, keyword)| *keyword);
    out.push_str(keyword.unwrap_or(&oid));
    out.push('=');
    let value = attribute.attr_value();
    // The JDK writes the value of an attribute without a keyword as hex even when it is a
    // string (RFC 2253 §2.4: "SHOULD be used if the AttributeType is of the dotted-decimal
    // form"); e.g. emailAddress becomes `1.2.840.113549.1.9.1=#16...`.
    let text = if keyword.is_some() { jdk_text(value) } else { None };
    if let Some(text) = text {
        escape_value(&text, out);
    } else {
        let der = value.to_der_vec().map_err(|e| TlsError::Subject { reason: e.to_string() })?;
        out.push('#');
        for byte in der {
            out.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble is a hex digit"));
            out.push(char::from_digit(u32::from(byte & 0xf), 16).expect("a nibble is a hex digit"));
        }
    }
    Ok(())
}

/// `value` as text if the JDK writes it as text (`AVA.isDerString(value, false)`), decoded
/// as JDK 25 decodes it (see the module comment).
fn jdk_text(value: &Any<'_>) -> Option<String> {
    if value.header.class() != Class::Universal || value.header.is_constructed() {
        return None;
    }
    let bytes = value.data;
    match value.tag() {
        Tag::Utf8String => Some(String::from_utf8_lossy(bytes).into_owned()),
        Tag::PrintableString | Tag::Ia5String | Tag::T61String | Tag::GeneralString => {
            Some(bytes.iter().map(|&byte| char::from(byte)).collect())
        }
        Tag::BmpString => {
            // An odd last byte is not a UTF-16 unit; like Java's decoder, make it U+FFFD.
            let units = bytes.chunks(2).map(|unit| match unit {
                [high, low] => u16::from_be_bytes([*high, *low]),
                _ => 0xfffd,
            });
            Some(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
        }
        _ => None,
    }
}

/// Appends `value` escaped as the JDK does (see the module comment).
fn escape_value(value: &str, out: &mut String) {
    let mut escaped = Vec::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => escaped.extend(['\\', c]),
            '\0' => escaped.extend(['\\', '0', '0']),
            c => escaped.push(c),
        }
    }
    // Like the JDK, find the surrounding whitespace after escaping, and escape each of
    // those characters, not only the first and last.
    let is_space = |c: &&char| **c == ' ' || **c == '\r';
    let leading = escaped.iter().take_while(is_space).count();
    let trailing_from = escaped.len() - escaped.iter().rev().take_while(is_space).count();
    for (i, c) in escaped.into_iter().enumerate() {
        if i < leading || i >= trailing_from {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected strings below are what `new javax.security.auth.x500.X500Principal(der)
    // .getName()` gives for the same DER with Temurin 25.0.3 (and OpenJDK 17.0.15, except
    // where a comment says otherwise).

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];
    const UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
    const SERIAL_NUMBER: &[u8] = &[0x55, 0x04, 0x05];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    const UTF8: u8 = 0x0c;
    const PRINTABLE: u8 = 0x13;
    const T61: u8 = 0x14;
    const IA5: u8 = 0x16;
    const BMP: u8 = 0x1e;
    const UNIVERSAL: u8 = 0x1c;
    const VISIBLE: u8 = 0x1a;

    /// DER tag-length-value; lengths up to 65535, enough for test names.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            len @ 0..=0x7f => out.push(len as u8),
            len @ 0x80..=0xff => out.extend([0x81, len as u8]),
            len => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// One attribute: (OID content bytes, value tag, value content bytes).
    type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

    /// A DER Name from RDNs in DER order. Attributes of a multi-valued RDN are written in
    /// the order given, so the caller sorts them as DER's SET OF requires.
    fn name_der(rdns: &[&[Attribute<'_>]]) -> Vec<u8> {
        let mut sequence = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in rdn.iter() {
                let mut attribute = tlv(0x06, oid);
                attribute.extend(tlv(*tag, value));
                set.extend(tlv(0x30, &attribute));
            }
            sequence.extend(tlv(0x31, &set));
        }
        tlv(0x30, &sequence)
    }

    fn rfc2253(rdns: &[&[Attribute<'_>]]) -> String {
        let der = name_der(rdns);
        let (rest, name) = X509Name::from_der(&der).expect("test name parses");
        assert!(rest.is_empty());
        name_rfc2253(&name).expect("test name converts")
    }

    fn cn(value: &str) -> String {
        rfc2253(&[&[(CN, UTF8, value.as_bytes())]])
    }

    #[test]
    fn rdns_come_out_in_reverse_der_order() {
        let name = rfc2253(&[
            &[(C, PRINTABLE, b"US")],
            &[(O, UTF8, b"Sluice")],
            &[(OU, UTF8, b"Test")],
            &[(CN, UTF8, b"alice")],
        ]);
        assert_eq!(name, "CN=alice,OU=Test,O=Sluice,C=US");
    }

    #[test]
    fn multi_valued_rdn_is_joined_with_plus_in_der_order() {
        let name = rfc2253(&[&[(O, UTF8, b"Sluice")], &[(CN, UTF8, b"alice"), (UID, UTF8, b"a1")]]);
        assert_eq!(name, "CN=alice+UID=a1,O=Sluice");
    }

    #[test]
    fn special_characters_are_escaped_with_a_backslash() {
        assert_eq!(cn("a,b"), r"CN=a\,b");
        assert_eq!(cn("a+b"), r"CN=a\+b");
        assert_eq!(cn(r#"<a>;"b"\"#), r#"CN=\<a\>\;\"b\"\\"#);
    }

    #[test]
    fn hash_and_equals_are_escaped_anywhere_like_the_jdk() {
        assert_eq!(cn("#a"), r"CN=\#a");
        assert_eq!(cn("a#b=c"), r"CN=a\#b\=c");
    }

    #[test]
    fn every_leading_and_trailing_space_is_escaped() {
        assert_eq!(cn(" a b "), r"CN=\ a b\ ");
        assert_eq!(cn("  a  "), r"CN=\ \ a\ \ ");
        assert_eq!(cn("a\r"), "CN=a\\\r");
        assert_eq!(cn("  "), r"CN=\ \ ");
    }

    #[test]
    fn nul_is_written_as_backslash_zero_zero() {
        assert_eq!(cn("a\0b"), r"CN=a\00b");
    }

    #[test]
    fn non_ascii_text_is_kept_as_is() {
        assert_eq!(cn("Zoë 東京"), "CN=Zoë 東京");
    }

    #[test]
    fn empty_name_and_empty_value() {
        assert_eq!(rfc2253(&[]), "");
        assert_eq!(cn(""), "CN=");
    }

    #[test]
    fn keywords_are_only_the_jdk_rfc2253_ones() {
        let name = rfc2253(&[&[(DC, IA5, b"com")], &[(DC, IA5, b"example")], &[(UID, UTF8, b"alice")]]);
        assert_eq!(name, "UID=alice,DC=example,DC=com");
        // serialNumber has a keyword in the JDK, but not an RFC 2253 one.
        assert_eq!(rfc2253(&[&[(SERIAL_NUMBER, PRINTABLE, b"42")]]), "2.5.4.5=#13023432");
    }

    #[test]
    fn attribute_without_keyword_is_dotted_oid_and_der_hex() {
        let name = rfc2253(&[&[(EMAIL, IA5, b"alice@example.com")], &[(CN, UTF8, b"alice")]]);
        assert_eq!(name, "CN=alice,1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d");
    }

    #[test]
    fn other_string_types_follow_the_jdk() {
        assert_eq!(rfc2253(&[&[(CN, PRINTABLE, b"alice")]]), "CN=alice");
        assert_eq!(rfc2253(&[&[(CN, IA5, b"alice")]]), "CN=alice");
        // Types the JDK does not treat as text come out as hex, keyword or not.
        assert_eq!(rfc2253(&[&[(CN, VISIBLE, b"ab")]]), "CN=#1a026162");
        assert_eq!(rfc2253(&[&[(CN, UNIVERSAL, &[0, 0, 0, b'a'])]]), "CN=#1c0400000061");
    }

    // JDK 17 reads the bytes of all of these as UTF-8 (`CN=caf\u{fffd}`, `CN=café`,
    // `CN=\00a\00\,`, ...); see the module comment.
    #[test]
    fn string_types_are_decoded_like_jdk_25() {
        assert_eq!(rfc2253(&[&[(CN, BMP, &[0, b'a', 0, b','])]]), r"CN=a\,");
        assert_eq!(rfc2253(&[&[(CN, T61, b"caf\xe9")]]), "CN=café");
        assert_eq!(rfc2253(&[&[(CN, T61, "café".as_bytes())]]), "CN=cafÃ©");
        assert_eq!(rfc2253(&[&[(CN, IA5, b"caf\xe9")]]), "CN=café");
        assert_eq!(rfc2253(&[&[(CN, PRINTABLE, b"caf\xe9")]]), "CN=café");
        assert_eq!(rfc2253(&[&[(CN, BMP, &[0, b'a', 0])]]), "CN=a\u{fffd}");
        assert_eq!(rfc2253(&[&[(CN, BMP, &[0x00, 0xe9, 0x67, 0x71])]]), "CN=é東");
        assert_eq!(rfc2253(&[&[(CN, UTF8, b"caf\xe9")]]), "CN=caf\u{fffd}");
    }
}
