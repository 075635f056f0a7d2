//! Check digits and structural rules. Every function takes the identifier
//! already normalised (separators removed, ASCII upper case) unless it says
//! otherwise, and never panics on malformed input: it answers `false`.

/// Luhn (mod 10) over a string of ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card network a number belongs to, from its issuer prefix (IIN) and
/// length; `None` when no known network issues such numbers.
pub fn card_network(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits[..n.min(len)]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some("mastercard");
    }
    if matches!(p2, 34 | 37) && len == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
        && (16..=19).contains(&len)
    {
        return Some("discover");
    }
    if (3528..=3589).contains(&p4) && (16..=19).contains(&len) {
        return Some("jcb");
    }
    if ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len) {
        return Some("diners");
    }
    if p2 == 62 && (16..=19).contains(&len) {
        return Some("unionpay");
    }
    if (2200..=2204).contains(&p4) && (16..=19).contains(&len) {
        return Some("mir");
    }
    if (p2 == 50 || (56..=58).contains(&p2) || matches!(p4, 6304 | 6759 | 6761..=6763))
        && (12..=19).contains(&len)
    {
        return Some("maestro");
    }
    None
}

/// Card numbers published by networks and payment processors for testing
/// (Stripe, Adyen, Braintree and PayPal documentation). They pass Luhn and
/// are reported, but with a low score: see the README.
pub const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4000056655665556",
    "4012888888881881",
    "4222222222222",
    "4000000000000002",
    "4000000000009995",
    "5555555555554444",
    "5200828282828210",
    "5105105105105100",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "3056930009020004",
    "36227206271667",
    "30569309025904",
    "38520000023237",
    "3566002020360505",
    "3530111333300000",
    "6200000000000005",
];

/// IBAN lengths by country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// The IBAN length of a country, `None` for a country without IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, n)| n)
}

/// ISO 13616 / ISO 7064 MOD 97-10 over a compact, upper-case IBAN, with the
/// country's length checked.
pub fn iban(compact: &[u8]) -> bool {
    if compact.len() < 5
        || !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    if iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut rem = 0u32;
    for &c in rearranged {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c - b'A') + 10) % 97;
        }
    }
    rem == 1
}

/// Dutch BSN: nine digits passing the 11-proof
/// (9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 mod 11), not all zero.
pub fn nl_bsn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d = |i: usize| i64::from(digits[i] - b'0');
    let sum: i64 = (0..8).map(|i| (9 - i as i64) * d(i)).sum::<i64>() - d(8);
    sum != 0 && sum % 11 == 0
}

const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish DNI (`12345678Z`) or NIE (`X1234567L`): the letter is the number
/// mod 23 looked up in the official table (NIE: X, Y, Z stand for 0, 1, 2).
pub fn es_dni(id: &[u8]) -> bool {
    if id.len() != 9 {
        return false;
    }
    let (body, letter) = id.split_at(8);
    let mut n: u32 = 0;
    for (i, &c) in body.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'X' if i == 0 => 0,
            b'Y' if i == 0 => 1,
            b'Z' if i == 0 => 2,
            _ => return false,
        };
        n = n * 10 + v;
    }
    DNI_LETTERS[(n % 23) as usize] == letter[0]
}

/// Italian codice fiscale: 16 characters, the last a check character computed
/// from the odd and even positions of the first 15.
pub fn it_codice_fiscale(cf: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    if cf.len() != 16
        || !cf
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in cf[..15].iter().enumerate() {
        // Digits count as the letter of the same index (0 = A …).
        let index = if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'A'
        };
        sum += if i % 2 == 0 {
            ODD[usize::from(index)]
        } else {
            u32::from(index)
        };
    }
    cf[15] == b'A' + (sum % 26) as u8
}

/// French NIR (numéro de sécurité sociale): 13 characters (Corsica: `2A` and
/// `2B` as department) and a two-digit key equal to 97 − (number mod 97).
pub fn fr_nir(nir: &[u8]) -> bool {
    if nir.len() != 15 {
        return false;
    }
    let (body, key) = nir.split_at(13);
    if !key.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut n: u64 = 0;
    for (i, &c) in body.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            // 2A → 19, 2B → 18 (the department digits 5 and 6).
            b'A' if i == 6 && body[5] == b'2' => 9,
            b'B' if i == 6 && body[5] == b'2' => 8,
            _ => return false,
        };
        n = n * 10 + v;
    }
    if body[6].is_ascii_uppercase() {
        // The substituted department starts with 1, not 2.
        n -= 10_000_000;
    }
    let key = u64::from(key[0] - b'0') * 10 + u64::from(key[1] - b'0');
    97 - n % 97 == key
}

/// Swedish personnummer or samordningsnummer: ten digits YYMMDDNNNC with a
/// plausible date (day + 60 for a samordningsnummer) and Luhn over all ten.
pub fn se_personnummer(ten: &[u8]) -> bool {
    if ten.len() != 10 || !ten.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let two = |i: usize| (ten[i] - b'0') * 10 + (ten[i + 1] - b'0');
    let month = two(2);
    let day = two(4);
    let day = if day > 60 { day - 60 } else { day };
    (1..=12).contains(&month) && (1..=31).contains(&day) && luhn(ten)
}

/// German Steuer-Identifikationsnummer: eleven digits, no leading zero, in
/// the first ten exactly one digit repeated (twice or three times) and the
/// last an ISO 7064 MOD 11,10 check digit.
pub fn de_steuer_id(digits: &[u8]) -> bool {
    if digits.len() != 11 || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
        return false;
    }
    let mut counts = [0u8; 10];
    for &d in &digits[..10] {
        counts[usize::from(d - b'0')] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c > 1).count();
    let max = counts.iter().copied().max().unwrap_or(0);
    if repeated != 1 || max > 3 {
        return false;
    }
    let mut product = 10u32;
    for &d in &digits[..10] {
        let mut sum = (u32::from(d - b'0') + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    u32::from(digits[10] - b'0') == check
}

/// Indian Aadhaar: twelve digits, the first not 0 or 1, the last a Verhoeff
/// check digit.
pub fn in_aadhaar(digits: &[u8]) -> bool {
    if digits.len() != 12 || !digits.iter().all(u8::is_ascii_digit) || digits[0] < b'2' {
        return false;
    }
    verhoeff(digits)
}

/// Verhoeff over a string of ASCII digits, the check digit last.
pub fn verhoeff(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut c = 0u8;
    for (i, &d) in digits.iter().rev().enumerate() {
        c = D[usize::from(c)][usize::from(P[i % 8][usize::from(d - b'0')])];
    }
    c == 0
}

/// US Social Security number (nine digits): area not 000, 666 or 900–999,
/// group not 00, serial not 0000, and not one of the numbers the SSA voided
/// after they were published (078-05-1120, 219-09-9999) or reserves for
/// advertising (987-65-4320 … 4329), nor the textbook 123-45-6789.
pub fn us_ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = &digits[..3];
    if area == b"000" || area == b"666" || area[0] == b'9' {
        return false;
    }
    if &digits[3..5] == b"00" || &digits[5..] == b"0000" {
        return false;
    }
    !matches!(digits, b"078051120" | b"219099999" | b"123456789")
}

/// UK National Insurance number: two prefix letters (not D, F, I, Q, U, V;
/// the second not O; not BG, GB, KN, NK, NT, TN, ZZ), six digits, suffix A–D.
pub fn uk_nino(nino: &[u8]) -> bool {
    if nino.len() != 9 {
        return false;
    }
    let (a, b) = (nino[0], nino[1]);
    let bad_first = b"DFIQUV";
    let bad_second = b"DFIQUVO";
    if !a.is_ascii_uppercase()
        || !b.is_ascii_uppercase()
        || bad_first.contains(&a)
        || bad_second.contains(&b)
    {
        return false;
    }
    if matches!(
        &nino[..2],
        b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
    ) {
        return false;
    }
    nino[2..8].iter().all(u8::is_ascii_digit) && (b'A'..=b'D').contains(&nino[8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_valid_and_rejects_one_digit_changes() {
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b""));
        assert!(!luhn(b"41a1"));
    }

    #[test]
    fn card_networks_by_prefix_and_length() {
        assert_eq!(card_network(b"4111111111111111"), Some("visa"));
        assert_eq!(card_network(b"5555555555554444"), Some("mastercard"));
        assert_eq!(card_network(b"2223003122003222"), Some("mastercard"));
        assert_eq!(card_network(b"378282246310005"), Some("amex"));
        assert_eq!(card_network(b"6011111111111117"), Some("discover"));
        assert_eq!(card_network(b"3566002020360505"), Some("jcb"));
        assert_eq!(card_network(b"30569309025904"), Some("diners"));
        // Visa does not issue 15 digits; nobody issues numbers starting with 1 or 9.
        assert_eq!(card_network(b"411111111111111"), None);
        assert_eq!(card_network(b"1234567812345670"), None);
        assert_eq!(card_network(b"9234567812345678"), None);
        for card in TEST_CARDS {
            assert!(luhn(card.as_bytes()), "{card}");
            assert!(card_network(card.as_bytes()).is_some(), "{card}");
        }
    }

    #[test]
    fn iban_mod97_and_country_lengths() {
        assert!(iban(b"DE89370400440532013000"));
        assert!(iban(b"GB82WEST12345698765432"));
        assert!(iban(b"NL91ABNA0417164300"));
        assert!(iban(b"FR1420041010050500013M02606"));
        assert!(iban(b"NO9386011117947"));
        // One digit changed, and a valid checksum with the wrong length.
        assert!(!iban(b"DE89370400440532013001"));
        assert!(!iban(b"DE8937040044053201300"));
        assert!(!iban(b"XX89370400440532013000"));
        assert!(!iban(b"de89370400440532013000"));
    }

    #[test]
    fn national_ids() {
        assert!(nl_bsn(b"111222333"));
        assert!(nl_bsn(b"123456782"));
        assert!(!nl_bsn(b"123456789"));
        assert!(!nl_bsn(b"000000000"));

        assert!(es_dni(b"12345678Z"));
        assert!(!es_dni(b"12345678A"));
        assert!(es_dni(b"X1234567L"));
        assert!(!es_dni(b"X1234567A"));

        assert!(it_codice_fiscale(b"RSSMRA85T10A562S"));
        assert!(!it_codice_fiscale(b"RSSMRA85T10A562T"));
        // Omocodia: digits replaced by letters keep a valid check character.
        assert!(it_codice_fiscale(b"MRTMTT25D09F205Z"));

        assert!(fr_nir(b"255081416802538"));
        assert!(!fr_nir(b"255081416802539"));
        assert!(fr_nir(b"269052A00401129"));
        assert!(!fr_nir(b"269052B00401129"));

        assert!(se_personnummer(b"8112189876"));
        assert!(!se_personnummer(b"8112189875"));
        assert!(!se_personnummer(b"8113189876")); // month 13

        assert!(de_steuer_id(b"86095742719"));
        assert!(!de_steuer_id(b"86095742718"));
        assert!(!de_steuer_id(b"01234567890"));

        assert!(in_aadhaar(b"234123412346"));
        assert!(!in_aadhaar(b"234123412347"));
        assert!(!in_aadhaar(b"134123412346"));

        assert!(us_ssn(b"536221234"));
        assert!(!us_ssn(b"666221234"));
        assert!(!us_ssn(b"900221234"));
        assert!(!us_ssn(b"536001234"));
        assert!(!us_ssn(b"078051120"));

        assert!(uk_nino(b"AB123456C"));
        assert!(!uk_nino(b"GB123456C"));
        assert!(!uk_nino(b"DA123456C"));
        assert!(!uk_nino(b"AB123456E"));
    }
}
