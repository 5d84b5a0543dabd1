//! Django's four default password validators (`AUTH_PASSWORD_VALIDATORS`), ported so that
//! Tessera rejects exactly the passwords Django would, with byte-identical messages.
//!
//! Ported from `django/contrib/auth/password_validation.py` (Django 5.2.19), in Django's
//! default order: `UserAttributeSimilarityValidator`, `MinimumLengthValidator`,
//! `CommonPasswordValidator`, `NumericPasswordValidator`. Each validator contributes at most
//! one message, like Django's `validate_password`, which collects one `ValidationError` per
//! failing validator.
//!
//! Python string semantics are reproduced where they matter:
//! * `len()` counts Unicode scalar values (`chars().count()`), not bytes.
//! * `str.lower()` is `str::to_lowercase` (both do full case mapping, including final sigma).
//! * `str.strip()` strips Python's whitespace set, which differs from `char::is_whitespace`
//!   (Python also strips U+001C..U+001F): see `py_isspace`.
//! * `str.isdigit()` is true for Numeric_Type=Digit/Decimal characters only: `'²'` and `'٣'`
//!   count, `'½'` and `'Ⅻ'` (numeric but not digits) do not, so neither `char::is_numeric` nor
//!   `char::is_ascii_digit` fits; a table generated from CPython is used: see `py_isdigit`.
//! * `re.split(r"\W+", …)` uses Python's `\w` (alphanumeric or `_`), which unlike
//!   `char::is_alphanumeric` excludes combining vowel signs etc.: see `py_is_word`.
//! * `difflib.SequenceMatcher.quick_ratio` is ported, bit for bit: see `SequenceMatcher`.
//!
//! The Unicode tables were generated with CPython 3.11.7 (Unicode 14.0). Characters assigned
//! in later Unicode versions follow Rust's standard library tables instead.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use crate::service::error::FieldErrors;

/// Django's `UserAttributeSimilarityValidator` default `max_similarity`.
const MAX_SIMILARITY: f64 = 0.7;

/// Password rules configured for the service. `min_length` is `MinimumLengthValidator`'s
/// `min_length` option (Django's default, 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8 }
    }
}

/// The user fields Django's `UserAttributeSimilarityValidator` compares the password against.
/// Empty fields are skipped, as Django skips falsy attribute values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserAttributes<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// A stored account's attributes, for a password it chooses now.
impl<'a> From<&'a entity::user::Model> for UserAttributes<'a> {
    fn from(user: &'a entity::user::Model) -> Self {
        Self {
            username: &user.username,
            email: &user.email,
            first_name: &user.first_name,
            last_name: &user.last_name,
        }
    }
}

impl PasswordPolicy {
    /// Records `password`'s problems under `field` (the form's field that carries it), where
    /// a use case gathers its errors to report them together, as a DRF serializer does.
    pub fn check(
        &self,
        errors: &mut FieldErrors,
        field: &str,
        password: &SecretString,
        user: &UserAttributes<'_>,
    ) {
        errors.extend(field, self.validate(password.expose_secret(), user));
    }

    /// All failing validators' messages, in Django's default AUTH_PASSWORD_VALIDATORS order
    /// (UserAttributeSimilarity, MinimumLength, CommonPassword, NumericPassword). Empty = valid.
    pub fn validate(&self, password: &str, user: &UserAttributes<'_>) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(verbose_name) = too_similar_attribute(password, user, MAX_SIMILARITY) {
            errors.push(format!(
                "The password is too similar to the {verbose_name}."
            ));
        }
        if password.chars().count() < self.min_length {
            errors.push(too_short_message(self.min_length));
        }
        if is_common_password(password) {
            errors.push("This password is too common.".to_owned());
        }
        if py_isdigit(password) {
            errors.push("This password is entirely numeric.".to_owned());
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// UserAttributeSimilarityValidator
// ---------------------------------------------------------------------------------------------

/// Django's `UserAttributeSimilarityValidator.validate`: returns the verbose name of the first
/// attribute (in `DEFAULT_USER_ATTRIBUTES` order) the password is too similar to.
///
/// As in Django 5.2's source, *every* attribute (not only the email) is compared both whole
/// and split on `\W+`, `exceeds_maximum_length_ratio` is applied to each part, and the
/// similarity test is `quick_ratio() >= max_similarity` alone (Django never calls `ratio()`,
/// so e.g. "ecila" is too similar to the username "alice").
fn too_similar_attribute(
    password: &str,
    user: &UserAttributes<'_>,
    max_similarity: f64,
) -> Option<&'static str> {
    let password: Vec<char> = password.to_lowercase().chars().collect();
    let attributes = [
        (user.username, "username"),
        (user.first_name, "first name"),
        (user.last_name, "last name"),
        (user.email, "email address"),
    ];
    for (value, verbose_name) in attributes {
        if value.is_empty() {
            continue;
        }
        let value_lower = value.to_lowercase();
        let mut parts = split_non_word(&value_lower);
        parts.push(&value_lower);
        for part in parts {
            let part: Vec<char> = part.chars().collect();
            if exceeds_maximum_length_ratio(password.len(), max_similarity, part.len()) {
                continue;
            }
            if SequenceMatcher::new(&password, &part).quick_ratio() >= max_similarity {
                return Some(verbose_name);
            }
        }
    }
    None
}

/// Django's `exceeds_maximum_length_ratio(password, max_similarity, value)`, on lengths in
/// characters: a value ten or more times shorter than the password can never reach the
/// similarity bound, so Django skips it.
fn exceeds_maximum_length_ratio(pwd_len: usize, max_similarity: f64, value_len: usize) -> bool {
    let length_bound_similarity = max_similarity / 2.0 * pwd_len as f64;
    pwd_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// Python's `re.split(r"\W+", s)`: separators are maximal runs of non-word characters; empty
/// leading/trailing pieces are kept (`"@x"` gives `["", "x"]`).
fn split_non_word(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_separator = false;
    for (i, c) in s.char_indices() {
        match (py_is_word(c), in_separator) {
            (false, false) => {
                parts.push(&s[start..i]);
                in_separator = true;
            }
            (true, true) => {
                start = i;
                in_separator = false;
            }
            _ => {}
        }
    }
    parts.push(if in_separator { "" } else { &s[start..] });
    parts
}

/// Python's `\w` for `str` patterns: `str.isalnum()` or `_`. `char::is_alphanumeric` also
/// accepts the Other_Alphabetic marks (e.g. Devanagari vowel signs, U+0345, circled letters)
/// that Python does not, so those are subtracted.
fn py_is_word(c: char) -> bool {
    c == '_' || (c.is_alphanumeric() && !in_ranges(c, NON_WORD_ALPHABETIC))
}

// ---------------------------------------------------------------------------------------------
// MinimumLengthValidator
// ---------------------------------------------------------------------------------------------

/// Django's `ngettext` message; English uses the singular only for exactly one.
fn too_short_message(min_length: usize) -> String {
    let noun = if min_length == 1 {
        "character"
    } else {
        "characters"
    };
    format!("This password is too short. It must contain at least {min_length} {noun}.")
}

// ---------------------------------------------------------------------------------------------
// CommonPasswordValidator
// ---------------------------------------------------------------------------------------------

// Django's common-passwords.txt.gz (Django 5.2.19), BSD-3-Clause, (c) Django Software Foundation.
static COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("common-passwords.txt.gz");

/// `{x.strip() for x in gzip.open(path, "rt", encoding="utf-8")}`, decompressed once.
static COMMON_PASSWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(COMMON_PASSWORDS_GZ)
        .read_to_string(&mut text)
        .expect("embedded common-passwords.txt.gz is valid gzipped UTF-8");
    // Python's text mode uses universal newlines: "\r\n", "\r" and "\n" all end a line.
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split_terminator('\n')
        .map(|line| py_strip(line).to_owned())
        .collect()
});

/// Django's check: `password.lower().strip() in self.passwords`.
fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(py_strip(&password.to_lowercase()))
}

/// Python's `str.strip()` with no argument.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `str.isspace()` for one character (bidi class WS/B/S or category Zs), generated
/// from CPython. Unlike `char::is_whitespace` it includes U+001C..U+001F.
fn py_isspace(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

// ---------------------------------------------------------------------------------------------
// NumericPasswordValidator
// ---------------------------------------------------------------------------------------------

/// Python's `str.isdigit()`: non-empty and every character has Numeric_Type Digit or Decimal
/// (ASCII and other scripts' decimal digits, superscripts, circled digits…). Chosen over
/// `char::is_numeric`, which would also flag fractions and Roman numerals that Django accepts.
fn py_isdigit(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| in_ranges(c, PY_DIGIT_RANGES))
}

/// Whether `c` lies in one of the flattened half-open ranges `[s0, e0, s1, e1, …]`. The
/// table is strictly increasing, so the number of entries `<= c` is odd exactly when `c` is
/// inside a range.
fn in_ranges(c: char, ranges: &[u32]) -> bool {
    ranges.partition_point(|&bound| bound <= u32::from(c)) % 2 == 1
}

// ---------------------------------------------------------------------------------------------
// difflib.SequenceMatcher
// ---------------------------------------------------------------------------------------------

/// A port of CPython's `difflib.SequenceMatcher` over characters, as Django constructs it:
/// `isjunk=None` and `autojunk=True`. With no junk function the junk set is always empty, so
/// the two junk-extension loops at the end of `find_longest_match` never run and are omitted;
/// the autojunk "popular element" heuristic (for `b` of 200+ elements) is kept.
pub(crate) struct SequenceMatcher<'s> {
    a: &'s [char],
    b: &'s [char],
}

impl<'s> SequenceMatcher<'s> {
    pub(crate) fn new(a: &'s [char], b: &'s [char]) -> Self {
        Self { a, b }
    }

    /// An upper bound on [`Self::ratio`]: matches counted as a multiset intersection.
    pub(crate) fn quick_ratio(&self) -> f64 {
        let mut fullbcount: HashMap<char, usize> = HashMap::new();
        for &elt in self.b {
            *fullbcount.entry(elt).or_insert(0) += 1;
        }
        // avail[x] is the number of times x appears in b less the number of times it has
        // been seen in a so far.
        let mut avail: HashMap<char, isize> = HashMap::new();
        let mut matches = 0;
        for &elt in self.a {
            let numb = match avail.get(&elt) {
                Some(&n) => n,
                None => fullbcount.get(&elt).map_or(0, |&n| n as isize),
            };
            avail.insert(elt, numb - 1);
            if numb > 0 {
                matches += 1;
            }
        }
        calculate_ratio(matches, self.a.len() + self.b.len())
    }
}

/// difflib's `_calculate_ratio`: `2.0 * matches / length`, or 1.0 for two empty sequences.
fn calculate_ratio(matches: usize, length: usize) -> f64 {
    if length > 0 {
        2.0 * matches as f64 / length as f64
    } else {
        1.0
    }
}

// ---------------------------------------------------------------------------------------------
// Unicode tables, generated with CPython 3.11.7 (Unicode 14.0)
// ---------------------------------------------------------------------------------------------

/// Characters `char::is_alphanumeric` accepts but Python's `re` `\w` rejects (assigned
/// Other_Alphabetic marks of categories Mn/Mc/So): Rust 1.95's table minus CPython's `\w`.
/// Half-open ranges `[start, end)` flattened; see [`in_ranges`].
const NON_WORD_ALPHABETIC: &[u32] = &[
    0x345, 0x346, 0x363, 0x370, 0x5B0, 0x5BE, 0x5BF, 0x5C0, 0x5C1, 0x5C3, 0x5C4, 0x5C6, 0x5C7,
    0x5C8, 0x610, 0x61B, 0x64B, 0x658, 0x659, 0x660, 0x670, 0x671, 0x6D6, 0x6DD, 0x6E1, 0x6E5,
    0x6E7, 0x6E9, 0x6ED, 0x6EE, 0x711, 0x712, 0x730, 0x740, 0x7A6, 0x7B1, 0x816, 0x818, 0x81B,
    0x824, 0x825, 0x828, 0x829, 0x82D, 0x8D4, 0x8E0, 0x8E3, 0x8EA, 0x8F0, 0x904, 0x93A, 0x93C,
    0x93E, 0x94D, 0x94E, 0x950, 0x955, 0x958, 0x962, 0x964, 0x981, 0x984, 0x9BE, 0x9C5, 0x9C7,
    0x9C9, 0x9CB, 0x9CD, 0x9D7, 0x9D8, 0x9E2, 0x9E4, 0xA01, 0xA04, 0xA3E, 0xA43, 0xA47, 0xA49,
    0xA4B, 0xA4D, 0xA51, 0xA52, 0xA70, 0xA72, 0xA75, 0xA76, 0xA81, 0xA84, 0xABE, 0xAC6, 0xAC7,
    0xACA, 0xACB, 0xACD, 0xAE2, 0xAE4, 0xAFA, 0xAFD, 0xB01, 0xB04, 0xB3E, 0xB45, 0xB47, 0xB49,
    0xB4B, 0xB4D, 0xB56, 0xB58, 0xB62, 0xB64, 0xB82, 0xB83, 0xBBE, 0xBC3, 0xBC6, 0xBC9, 0xBCA,
    0xBCD, 0xBD7, 0xBD8, 0xC00, 0xC05, 0xC3E, 0xC45, 0xC46, 0xC49, 0xC4A, 0xC4D, 0xC55, 0xC57,
    0xC62, 0xC64, 0xC81, 0xC84, 0xCBE, 0xCC5, 0xCC6, 0xCC9, 0xCCA, 0xCCD, 0xCD5, 0xCD7, 0xCE2,
    0xCE4, 0xD00, 0xD04, 0xD3E, 0xD45, 0xD46, 0xD49, 0xD4A, 0xD4D, 0xD57, 0xD58, 0xD62, 0xD64,
    0xD81, 0xD84, 0xDCF, 0xDD5, 0xDD6, 0xDD7, 0xDD8, 0xDE0, 0xDF2, 0xDF4, 0xE31, 0xE32, 0xE34,
    0xE3B, 0xE4D, 0xE4E, 0xEB1, 0xEB2, 0xEB4, 0xEBA, 0xEBB, 0xEBD, 0xECD, 0xECE, 0xF71, 0xF84,
    0xF8D, 0xF98, 0xF99, 0xFBD, 0x102B, 0x1037, 0x1038, 0x1039, 0x103B, 0x103F, 0x1056, 0x105A,
    0x105E, 0x1061, 0x1062, 0x1065, 0x1067, 0x106E, 0x1071, 0x1075, 0x1082, 0x108E, 0x108F, 0x1090,
    0x109A, 0x109E, 0x1712, 0x1714, 0x1732, 0x1734, 0x1752, 0x1754, 0x1772, 0x1774, 0x17B6, 0x17C9,
    0x1885, 0x1887, 0x18A9, 0x18AA, 0x1920, 0x192C, 0x1930, 0x1939, 0x1A17, 0x1A1C, 0x1A55, 0x1A5F,
    0x1A61, 0x1A75, 0x1ABF, 0x1AC1, 0x1ACC, 0x1ACF, 0x1B00, 0x1B05, 0x1B35, 0x1B44, 0x1B80, 0x1B83,
    0x1BA1, 0x1BAA, 0x1BAC, 0x1BAE, 0x1BE7, 0x1BF2, 0x1C24, 0x1C37, 0x1DD3, 0x1DF5, 0x24B6, 0x24EA,
    0x2DE0, 0x2E00, 0xA674, 0xA67C, 0xA69E, 0xA6A0, 0xA802, 0xA803, 0xA80B, 0xA80C, 0xA823, 0xA828,
    0xA880, 0xA882, 0xA8B4, 0xA8C4, 0xA8C5, 0xA8C6, 0xA8FF, 0xA900, 0xA926, 0xA92B, 0xA947, 0xA953,
    0xA980, 0xA984, 0xA9B4, 0xA9C0, 0xA9E5, 0xA9E6, 0xAA29, 0xAA37, 0xAA43, 0xAA44, 0xAA4C, 0xAA4E,
    0xAA7B, 0xAA7E, 0xAAB0, 0xAAB1, 0xAAB2, 0xAAB5, 0xAAB7, 0xAAB9, 0xAABE, 0xAABF, 0xAAEB, 0xAAF0,
    0xAAF5, 0xAAF6, 0xABE3, 0xABEB, 0xFB1E, 0xFB1F, 0x10376, 0x1037B, 0x10A01, 0x10A04, 0x10A05,
    0x10A07, 0x10A0C, 0x10A10, 0x10D24, 0x10D28, 0x10EAB, 0x10EAD, 0x11000, 0x11003, 0x11038,
    0x11046, 0x11073, 0x11075, 0x11080, 0x11083, 0x110B0, 0x110B9, 0x110C2, 0x110C3, 0x11100,
    0x11103, 0x11127, 0x11133, 0x11145, 0x11147, 0x11180, 0x11183, 0x111B3, 0x111C0, 0x111CE,
    0x111D0, 0x1122C, 0x11235, 0x11237, 0x11238, 0x1123E, 0x1123F, 0x112DF, 0x112E9, 0x11300,
    0x11304, 0x1133E, 0x11345, 0x11347, 0x11349, 0x1134B, 0x1134D, 0x11357, 0x11358, 0x11362,
    0x11364, 0x11435, 0x11442, 0x11443, 0x11446, 0x114B0, 0x114C2, 0x115AF, 0x115B6, 0x115B8,
    0x115BF, 0x115DC, 0x115DE, 0x11630, 0x1163F, 0x11640, 0x11641, 0x116AB, 0x116B6, 0x1171D,
    0x1172B, 0x1182C, 0x11839, 0x11930, 0x11936, 0x11937, 0x11939, 0x1193B, 0x1193D, 0x11940,
    0x11941, 0x11942, 0x11943, 0x119D1, 0x119D8, 0x119DA, 0x119E0, 0x119E4, 0x119E5, 0x11A01,
    0x11A0B, 0x11A35, 0x11A3A, 0x11A3B, 0x11A3F, 0x11A51, 0x11A5C, 0x11A8A, 0x11A98, 0x11C2F,
    0x11C37, 0x11C38, 0x11C3F, 0x11C92, 0x11CA8, 0x11CA9, 0x11CB7, 0x11D31, 0x11D37, 0x11D3A,
    0x11D3B, 0x11D3C, 0x11D3E, 0x11D3F, 0x11D42, 0x11D43, 0x11D44, 0x11D47, 0x11D48, 0x11D8A,
    0x11D8F, 0x11D90, 0x11D92, 0x11D93, 0x11D97, 0x11EF3, 0x11EF7, 0x16F4F, 0x16F50, 0x16F51,
    0x16F88, 0x16F8F, 0x16F93, 0x16FF0, 0x16FF2, 0x1BC9E, 0x1BC9F, 0x1E000, 0x1E007, 0x1E008,
    0x1E019, 0x1E01B, 0x1E022, 0x1E023, 0x1E025, 0x1E026, 0x1E02B, 0x1E947, 0x1E948, 0x1F130,
    0x1F14A, 0x1F150, 0x1F16A, 0x1F170, 0x1F18A,
];

/// Characters for which CPython's `str.isdigit()` is true; half-open ranges, flattened.
const PY_DIGIT_RANGES: &[u32] = &[
    0x30, 0x3A, 0xB2, 0xB4, 0xB9, 0xBA, 0x660, 0x66A, 0x6F0, 0x6FA, 0x7C0, 0x7CA, 0x966, 0x970,
    0x9E6, 0x9F0, 0xA66, 0xA70, 0xAE6, 0xAF0, 0xB66, 0xB70, 0xBE6, 0xBF0, 0xC66, 0xC70, 0xCE6,
    0xCF0, 0xD66, 0xD70, 0xDE6, 0xDF0, 0xE50, 0xE5A, 0xED0, 0xEDA, 0xF20, 0xF2A, 0x1040, 0x104A,
    0x1090, 0x109A, 0x1369, 0x1372, 0x17E0, 0x17EA, 0x1810, 0x181A, 0x1946, 0x1950, 0x19D0, 0x19DB,
    0x1A80, 0x1A8A, 0x1A90, 0x1A9A, 0x1B50, 0x1B5A, 0x1BB0, 0x1BBA, 0x1C40, 0x1C4A, 0x1C50, 0x1C5A,
    0x2070, 0x2071, 0x2074, 0x207A, 0x2080, 0x208A, 0x2460, 0x2469, 0x2474, 0x247D, 0x2488, 0x2491,
    0x24EA, 0x24EB, 0x24F5, 0x24FE, 0x24FF, 0x2500, 0x2776, 0x277F, 0x2780, 0x2789, 0x278A, 0x2793,
    0xA620, 0xA62A, 0xA8D0, 0xA8DA, 0xA900, 0xA90A, 0xA9D0, 0xA9DA, 0xA9F0, 0xA9FA, 0xAA50, 0xAA5A,
    0xABF0, 0xABFA, 0xFF10, 0xFF1A, 0x104A0, 0x104AA, 0x10A40, 0x10A44, 0x10D30, 0x10D3A, 0x10E60,
    0x10E69, 0x11052, 0x1105B, 0x11066, 0x11070, 0x110F0, 0x110FA, 0x11136, 0x11140, 0x111D0,
    0x111DA, 0x112F0, 0x112FA, 0x11450, 0x1145A, 0x114D0, 0x114DA, 0x11650, 0x1165A, 0x116C0,
    0x116CA, 0x11730, 0x1173A, 0x118E0, 0x118EA, 0x11950, 0x1195A, 0x11C50, 0x11C5A, 0x11D50,
    0x11D5A, 0x11DA0, 0x11DAA, 0x16A60, 0x16A6A, 0x16AC0, 0x16ACA, 0x16B50, 0x16B5A, 0x1D7CE,
    0x1D800, 0x1E140, 0x1E14A, 0x1E2F0, 0x1E2FA, 0x1E950, 0x1E95A, 0x1F100, 0x1F10B, 0x1FBF0,
    0x1FBFA,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    /// Every row's messages are what real Django 5.2.19 (`validate_password` with the four
    /// default validators, `MinimumLengthValidator(min_length)`, an unsaved
    /// `django.contrib.auth.models.User`) returned under CPython 3.11.7. Columns: password,
    /// [username, email, first_name, last_name], min_length, expected messages.
    #[allow(clippy::type_complexity)]
    const DJANGO_ORACLE: &[(&str, [&str; 4], usize, &[&str])] = &[
        (
            "password",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is too common."],
        ),
        (
            "12345678",
            ["alice", "alice@example.com", "", ""],
            8,
            &[
                "This password is too common.",
                "This password is entirely numeric.",
            ],
        ),
        (
            "short",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is too short. It must contain at least 8 characters."],
        ),
        (
            "",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is too short. It must contain at least 8 characters."],
        ),
        (
            "",
            ["alice", "@example.com", "", ""],
            8,
            &[
                "The password is too similar to the email address.",
                "This password is too short. It must contain at least 8 characters.",
            ],
        ),
        (
            "alicesmith1",
            ["asmith", "alice.smith@example.com", "Alice", "Smith"],
            8,
            &["The password is too similar to the username."],
        ),
        (
            "alicesmith1",
            ["asmith", "alice.smith@example.com", "", ""],
            8,
            &["The password is too similar to the username."],
        ),
        (
            "alicesmith1",
            ["zed", "alice.smith@example.com", "", ""],
            8,
            &[],
        ),
        (
            "alicesmith",
            ["zed", "alice.smith@example.com", "", ""],
            8,
            &[],
        ),
        (
            "ecila",
            ["alice", "alice@example.com", "", ""],
            8,
            &[
                "The password is too similar to the username.",
                "This password is too short. It must contain at least 8 characters.",
            ],
        ),
        (
            "Alice2024!",
            ["bob", "alice@example.com", "Alice", ""],
            8,
            &[],
        ),
        (
            "smithson!",
            ["bob", "b@x.io", "", "Smithson"],
            8,
            &["The password is too similar to the last name."],
        ),
        (
            "smith123",
            ["john_doe.smith", "jd@example.org", "", ""],
            8,
            &[
                "The password is too similar to the username.",
                "This password is too common.",
            ],
        ),
        (
            "correct horse battery staple",
            ["alice", "alice@example.com", "", ""],
            8,
            &[],
        ),
        (
            "  PASSWORD  ",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is too common."],
        ),
        (
            "\u{1c}password\u{1f}",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is too common."],
        ),
        (
            "пароль",
            ["alice", "alice@example.com", "", ""],
            8,
            &[
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
            ],
        ),
        ("Пароль123", ["alice", "alice@example.com", "", ""], 8, &[]),
        (
            "١٢٣٤٥٦٧٨٩",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is entirely numeric."],
        ),
        (
            "²³⁴⁵⁶⁷⁸⁹",
            ["alice", "alice@example.com", "", ""],
            8,
            &["This password is entirely numeric."],
        ),
        ("½½½½½½½½", ["alice", "alice@example.com", "", ""], 8, &[]),
        ("ⅫⅫⅫⅫⅫⅫⅫⅫ", ["alice", "alice@example.com", "", ""], 8, &[]),
        (
            "त",
            ["bob", "bob@example.com", "स्मिता", ""],
            8,
            &[
                "The password is too similar to the first name.",
                "This password is too short. It must contain at least 8 characters.",
            ],
        ),
        (
            "οδυσσευς",
            ["ΟΔΥΣΣΕΥΣ", "o@example.com", "", ""],
            8,
            &["The password is too similar to the username."],
        ),
        (
            "bobbobbobbobbobbobbobbobbobbob",
            ["bob", "zz@example.com", "", ""],
            8,
            &[],
        ),
        (
            "",
            ["alice", "alice@example.com", "", ""],
            1,
            &["This password is too short. It must contain at least 1 character."],
        ),
        (
            "x",
            ["alice", "alice@example.com", "", ""],
            1,
            &["This password is too common."],
        ),
        (
            "abc",
            ["alice", "alice@example.com", "", ""],
            0,
            &["This password is too common."],
        ),
        ("Tr0ub4dor&3", ["", "", "", ""], 8, &[]),
        (
            "example.com",
            ["zed", "someone@example.com", "", ""],
            8,
            &["The password is too similar to the email address."],
        ),
    ];

    #[test]
    fn matches_django_oracle() {
        for &(password, [username, email, first_name, last_name], min_length, expected) in
            DJANGO_ORACLE
        {
            let user = UserAttributes {
                username,
                email,
                first_name,
                last_name,
            };
            let got = PasswordPolicy { min_length }.validate(password, &user);
            assert_eq!(got, expected, "password {password:?}, user {user:?}");
        }
    }

    #[test]
    fn password_is_too_common() {
        let user = UserAttributes {
            username: "bob",
            email: "bob@example.com",
            ..Default::default()
        };
        let got = PasswordPolicy::default().validate("password", &user);
        assert_eq!(got, ["This password is too common."]);
    }

    #[test]
    fn numeric_common_password_yields_both_in_django_order() {
        let got = PasswordPolicy::default().validate("12345678", &UserAttributes::default());
        assert_eq!(
            got,
            [
                "This password is too common.",
                "This password is entirely numeric."
            ]
        );
    }

    #[test]
    fn min_length_message_singular_and_plural() {
        let user = UserAttributes::default();
        assert_eq!(
            PasswordPolicy { min_length: 1 }.validate("", &user),
            ["This password is too short. It must contain at least 1 character."]
        );
        assert_eq!(
            PasswordPolicy { min_length: 12 }.validate("kW9#rTq2!vLz", &user),
            Vec::<String>::new()
        );
        assert_eq!(
            PasswordPolicy { min_length: 12 }.validate("kW9#rTq2!vL", &user),
            ["This password is too short. It must contain at least 12 characters."]
        );
        // Length counts characters, not UTF-8 bytes.
        assert_eq!(
            PasswordPolicy { min_length: 8 }.validate("ñéçøßåþð", &user),
            Vec::<String>::new()
        );
    }

    #[test]
    fn common_password_list_is_djangos() {
        assert_eq!(COMMON_PASSWORDS.len(), 19_640);
        for pw in ["123456", "qwerty", "пароль", "friend of joan"] {
            assert!(COMMON_PASSWORDS.contains(pw), "{pw}");
        }
        assert!(!COMMON_PASSWORDS.contains(""));
        assert!(is_common_password("\u{3000}QWERTY\u{1f}"));
        assert!(!is_common_password("\u{200b}qwerty"));
    }

    #[test]
    fn python_string_helpers() {
        assert!(py_isdigit("0123456789"));
        assert!(py_isdigit("٣²①"));
        assert!(!py_isdigit(""));
        assert!(!py_isdigit("½"));
        assert!(!py_isdigit("Ⅻ"));
        assert!(!py_isdigit("123a"));
        assert_eq!(py_strip("\u{1c} \t x y \u{a0}\u{85}"), "x y");
        assert_eq!(py_strip("\u{200b}x"), "\u{200b}x");
        assert_eq!(
            split_non_word("alice.smith@example.com"),
            ["alice", "smith", "example", "com"]
        );
        assert_eq!(split_non_word("john_doe.smith"), ["john_doe", "smith"]);
        assert_eq!(split_non_word("@x"), ["", "x"]);
        assert_eq!(split_non_word("x.."), ["x", ""]);
        assert_eq!(split_non_word(".."), ["", ""]);
        assert_eq!(split_non_word("abc"), ["abc"]);
        // Python's \w rejects the virama and vowel signs: re.split gives ['स', 'म', 'त', ''].
        assert_eq!(split_non_word("स्मिता"), ["स", "म", "त", ""]);
        assert!(exceeds_maximum_length_ratio(30, 0.7, 3));
        assert!(!exceeds_maximum_length_ratio(29, 0.7, 3));
        assert!(!exceeds_maximum_length_ratio(0, 0.7, 0));
    }

    /// (a, b, ratio(), quick_ratio()) as computed by CPython 3.11.7's
    /// `difflib.SequenceMatcher(a=a, b=b)` (isjunk=None, autojunk=True). The rows were drawn by
    /// a Python script from random and hand-picked pairs; the three with `b` of 200+ characters
    /// get a different ratio() when autojunk is off, so they exercise that heuristic.
    const DIFFLIB_VECTORS: &[(&str, &str, f64, f64)] = &[
        ("", "", 1.0, 1.0),
        ("", "a", 0.0, 0.0),
        ("a", "", 0.0, 0.0),
        ("ab", "c", 0.0, 0.0),
        ("101", "11001", 0.75, 0.75),
        ("abcd", "bcde", 0.75, 0.75),
        ("abxcd", "abcd", 0.8888888888888888, 0.8888888888888888),
        ("ecila", "alice", 0.2, 1.0),
        ("aabab", "101001", 0.0, 0.0),
        ("qabxcd", "abycdf", 0.6666666666666666, 0.6666666666666666),
        ("haiffdahaibfa", "", 0.0, 0.0),
        ("aab", "010110000000", 0.0, 0.0),
        ("bbaaaaaa", "ébaaaaa", 0.8, 0.8),
        ("01110110", "01110110", 1.0, 1.0),
        ("alicesmith1", "alice", 0.625, 0.625),
        ("alicesmith1", "smith", 0.625, 0.625),
        ("@.-@-x.x", "😀ßéaaßaa😀a😀é", 0.0, 0.0),
        (
            "baababbbbb",
            "€😀ßaaéééßaßéa",
            0.2608695652173913,
            0.2608695652173913,
        ),
        (
            "betmein@co9m",
            "letmein@com",
            0.8695652173913043,
            0.8695652173913043,
        ),
        ("g3g1a5symld6cu5ty1twxgj", "", 0.0, 0.0),
        (
            "pa9sxwordboc",
            "passwordbob",
            0.782608695652174,
            0.782608695652174,
        ),
        ("ζδγζβαβζζβγββ", "ζδγζββζζβγββ", 0.96, 0.96),
        ("010111101", ".--.-x-z.z_.yx_xy", 0.0, 0.0),
        (
            "admin.e1ample",
            "admin.example",
            0.9230769230769231,
            0.9230769230769231,
        ),
        (
            "alice9exam!le",
            "alice@example",
            0.8461538461538461,
            0.8461538461538461,
        ),
        (
            "examplezsxmith",
            "example_smith",
            0.8888888888888888,
            0.8888888888888888,
        ),
        ("00", "@xyy--.y.zz@-x_.zyxyyy.x.-", 0.0, 0.0),
        (
            "ea9n-luc_smith",
            "jean-luc_smith",
            0.9285714285714286,
            0.9285714285714286,
        ),
        (
            "ffedbaeafadiic",
            "ffadbaexfadiic",
            0.8571428571428571,
            0.9285714285714286,
        ),
        (
            "@_y.x.z.-@@--y",
            "@_y.ax.z.-@@--y",
            0.9655172413793104,
            0.9655172413793104,
        ),
        ("αζγαεγγζααγγγαβδδζα", "bigjeceiehhgbd", 0.0, 0.0),
        (
            "alicesmith1",
            "alice.smith@example.com",
            0.5882352941176471,
            0.5882352941176471,
        ),
        (
            "iaagedhbjbdfgbhjafiihi",
            "iaagy1bh!bjbdfgbhjafiihi",
            0.8695652173913043,
            0.8695652173913043,
        ),
        (
            "z__.@__.@@@.xx-_",
            "u160h92if73pdbo0jge8v7d30vnkty",
            0.0,
            0.0,
        ),
        (
            "babbabbaabaaabbbabaaaaabbbaaab",
            "babbabbaabaaabbbabaaaaabbbaaab1",
            0.9836065573770492,
            0.9836065573770492,
        ),
        (
            "_y.@y-z._yz@@@.-zyz.y_.zy-_-x__yx",
            "_y.@y-z._yz@@.-zyz.y_.zy-_-x__x",
            0.96875,
            0.96875,
        ),
        (
            "private Thread currentThread;",
            "private volatile Thread currentThread;",
            0.8656716417910447,
            0.8656716417910447,
        ),
        (
            "abbaaZbaaabbabaab字ObaZaaIabbbbaaaaababbbabZabb",
            "bbbbbbaababbbaabbaBabaaaababaaabbaaZbaaabbabaab字ObabbaIabbbbaaaaababbbabaabbb名bbaaabaabaXb漢abbaabbabSbbababbKabaaCbaaGbabaaabbbbabbabbbbaababaaaaaUaabbbabababababbaaaaaababbaaaaaaaabbabbMaVabaaabbabaabaaQabLTaaaaaaabaaabaabbbb仮bbabaaaabbbbbWaaaab",
            0.273972602739726,
            0.3013698630136986,
        ),
        (
            "babbbbaaDbCb!babaaaZaabbaAbZbaaaNbabaJbbbabbbbaaYaaQb",
            "abLabaabbba字ababaTbbbbaababbaaaMabaa漢GabbaabbabbRbaaDbCbababaaaaaabbaAbabaaaNbabaJbbbabbbbaaYaaQbbbbbbbbbababbaaaaabaabaaabbabaabaXbabaaabaabbbabbababbabaabaabbKVbaIabbbbbabaabbbaababbbbabbaab仮aaaaaabbaaabbbbaababbUaaabbaabaaabaababababababba",
            0.26440677966101694,
            0.3389830508474576,
        ),
        (
            "ababaaaRbaFaIbababbabbbObbbababaaabb!aabEbbabaVbababZbaaaaa!aabXbabbBab",
            "abbaaababPabbbAbabbabaaabababaaaRbaFaIbababbabbbObbbababaaabbaaabEbbabaVbabababaaaaaaaabXbabbBabaabaabaabbabTbbbCabbabaaabbababbababaaabbbbbMabaababbJbbbbbaaZaaaaaabaWbaaaa仮aabbabbaaabbbHbabbaabbabbbaba漢bbGaabbabaaaaaaaabbbbabbbabaaababaaabbabaa",
            0.3291139240506329,
            0.43670886075949367,
        ),
    ];

    #[test]
    fn sequence_matcher_matches_cpython_difflib() {
        // The vectors also hold CPython's `ratio()`, which Django's validator does not use.
        for &(a, b, _ratio, quick_ratio) in DIFFLIB_VECTORS {
            let (a_chars, b_chars) = (chars(a), chars(b));
            let sm = SequenceMatcher::new(&a_chars, &b_chars);
            assert_eq!(
                sm.quick_ratio().to_bits(),
                quick_ratio.to_bits(),
                "quick_ratio({a:?}, {b:?})"
            );
        }
    }
}
