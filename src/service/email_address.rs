//! Email addresses: which are valid, and the one form each is stored and compared in, so
//! that one mailbox can hold one account.
//!
//! Every address that enters (registration, login, password reset, resending a confirmation,
//! the command line, and every later way in) goes through [`is_valid_email`] and
//! [`normalize_email`]. Domains are stored in their ASCII form (IDNA A-labels, as DNS and mail
//! servers see them): `idn@exämple.com` and `idn@xn--exmple-cua.com` are one address, stored
//! as the second.

/// Django's `EmailValidator`, closely enough: a valid addr-spec whose domain is a dotted name
/// with an alphabetic (or `xn--`) top-level label, or `localhost`. Quoted local parts
/// (`"idn"@example.com`) are refused, as allauth refuses them: they name the same mailbox as
/// the unquoted form and could register it twice.
pub fn is_valid_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    if local.is_empty()
        || domain.is_empty()
        || local.contains('"')
        || !email_address::EmailAddress::is_valid(value)
    {
        return false;
    }
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    let tld_ok = (tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
        || (tld.len() > 4
            && tld[..4].eq_ignore_ascii_case("xn--")
            && tld[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && tld_ok
        && idna::domain_to_ascii(domain).is_ok()
}

/// The form an address is stored and compared in: trimmed, lowercased, its domain in IDNA
/// A-labels.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return email;
    };
    match idna::domain_to_ascii(domain) {
        Ok(ascii) => format!("{local}@{ascii}"),
        // Not a domain IDNA can map: left as typed (validation refuses it where it matters).
        Err(_) => email,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co",
            "x@localhost",
            "é@exämple.de",
            "a@xn--exmple-cua.com",
            "a@example.xn--p1ai",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@example.c",
            "a b@example.com",
            "a@-x.com",
            "a@example.123",
            "\"idn\"@example.com",
            "\"a b\"@example.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn one_mailbox_has_one_form() {
        for same in [
            "idn@exämple.com",
            " IDN@EXÄMPLE.COM ",
            "idn@xn--exmple-cua.com",
            "Idn@XN--EXMPLE-CUA.com",
        ] {
            assert_eq!(normalize_email(same), "idn@xn--exmple-cua.com", "{same}");
        }
        assert_eq!(normalize_email(" Ada@Example.COM"), "ada@example.com");
    }
}
