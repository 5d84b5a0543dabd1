//! allauth's `ACCOUNT_RATE_LIMITS` rule strings (`"10/m/ip,5/300s/key"`), parsed when the
//! configuration loads: a bad rule is a startup error naming its setting, and the limiter
//! never parses text again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who a rule counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Ip,
    Key,
    User,
}

/// At most `amount` hits per `period_seconds`, per subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub amount: u32,
    pub period_seconds: i64,
    pub per: Per,
}

/// One action's rules, as written and as parsed (`""`, the default, is no rule at all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rules {
    text: String,
    rules: Vec<Rule>,
}

impl Rules {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl FromStr for Rules {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rules = text
            .split(',')
            .map(str::trim)
            .filter(|rule| !rule.is_empty())
            .map(parse_rule)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            rules,
        })
    }
}

impl TryFrom<String> for Rules {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Rules> for String {
    fn from(rules: Rules) -> String {
        rules.text
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<&str> for Rules {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let bad = || format!("{rule:?} is not AMOUNT/PERIOD/PER, e.g. \"10/m/ip\" or \"5/300s/key\"");
    let mut parts = rule.split('/');
    let (Some(amount), Some(period)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let per = match parts.next() {
        None | Some("ip") => Per::Ip,
        Some("key") => Per::Key,
        Some("user") => Per::User,
        Some(_) => return Err(bad()),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    let amount: u32 = amount.parse().map_err(|_| bad())?;
    let (count, unit) = period.split_at(period.len().saturating_sub(1));
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let count: i64 = if count.is_empty() {
        1
    } else {
        count.parse().map_err(|_| bad())?
    };
    if amount == 0 || count <= 0 {
        return Err(bad());
    }
    Ok(Rule {
        amount,
        period_seconds: count * unit_seconds,
        per,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
        text.parse::<Rules>().map(|rules| rules.rules)
    }

    #[test]
    fn allauth_rule_strings_parse() {
        assert_eq!(
            parse_rules("10/m/ip,5/300s/key").unwrap(),
            vec![
                Rule {
                    amount: 10,
                    period_seconds: 60,
                    per: Per::Ip
                },
                Rule {
                    amount: 5,
                    period_seconds: 300,
                    per: Per::Key
                },
            ]
        );
        assert_eq!(parse_rules("1/180s/key").unwrap()[0].period_seconds, 180);
        assert_eq!(parse_rules("5/m/user").unwrap()[0].per, Per::User);
        assert_eq!(
            parse_rules("3/2h").unwrap()[0],
            Rule {
                amount: 3,
                period_seconds: 7200,
                per: Per::Ip
            }
        );
        assert!(parse_rules("").unwrap().is_empty());
        for bad in [
            "10",
            "x/m/ip",
            "10/w/ip",
            "10/m/host",
            "0/m/ip",
            "10/0s/ip",
            "1/m/ip/x",
        ] {
            assert!(parse_rules(bad).is_err(), "{bad}");
        }
    }
}
