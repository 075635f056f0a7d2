//! Each kind found where it is, and the hard negatives left alone.

use warden_pii::{Kind, scan};

/// The kinds and matched texts found in `text`.
fn found(text: &str) -> Vec<(&'static str, &str)> {
    scan(text)
        .into_iter()
        .map(|m| (m.kind.as_str(), &text[m.start..m.end]))
        .collect()
}

fn assert_one(text: &str, kind: Kind, matched: &str) {
    assert_eq!(found(text), [(kind.as_str(), matched)], "in {text:?}");
}

fn assert_none(text: &str) {
    assert_eq!(found(text), [], "in {text:?}");
}

#[test]
fn emails() {
    assert_one(
        "write to jane.doe+news@mail.example.co.uk today",
        Kind::Email,
        "jane.doe+news@mail.example.co.uk",
    );
    assert_one("<a@b.io>", Kind::Email, "a@b.io");
    assert_none("ssh root@localhost and user@host");
    assert_none("git clone git@github.com:warden/warden.git");
    assert_none("the icon is logo@2x.png");
    assert_none("npm i left-pad@1.3.0 and @types/node");
    assert_none("a..b@example.com is not valid either? no: the local part");
}

#[test]
fn phones() {
    assert_one("call +44 20 7946 0958.", Kind::Phone, "+44 20 7946 0958");
    assert_one("Tel: (415) 555-2671", Kind::Phone, "(415) 555-2671");
    assert_one("ring 415-555-2671 now", Kind::Phone, "415-555-2671");
    assert_one("dial 1-800-555-0199", Kind::Phone, "1-800-555-0199");
    assert_one("Grüße: (415) 555-2671", Kind::Phone, "(415) 555-2671");
    assert_one("portable 06 12 34 56 78", Kind::Phone, "06 12 34 56 78");
    assert_one("Büro 030/12345678", Kind::Phone, "030/12345678");
    assert_one("mobile: 07700900123", Kind::Phone, "07700900123");
    assert_one("+4915123456789", Kind::Phone, "+4915123456789");
    // Exchange starting with 1, N11 area codes, product codes, bare numbers.
    assert_none("415-155-2671");
    assert_none("911-555-2671");
    assert_none("SKU 415-555-2671");
    assert_none("part ABC-415-555-2671-X");
    assert_none("order 0123456789 shipped");
    // A key names its value: the phone keyword before it does not.
    assert_none("Contact: created_at=1366226145");
    assert_one("Contact: phone=0612345678", Kind::Phone, "0612345678");
    assert_none("2024-01-15 10:30:00");
    assert_none("15.01.2024 10:30");
    assert_one("Tel. 089 / 12 34 56 78", Kind::Phone, "089 / 12 34 56 78");
    assert_one("phone 415 555 2671", Kind::Phone, "415 555 2671");
    // Spaced 3-3-4 without a phone word, and `+` numbers with no country code.
    assert_none("sizes 415 555 2671");
    assert_none("scores +100 200 300 400");
    assert_none("+1 415 155 2671");
    assert_one("dial 0044 20 7946 0958", Kind::Phone, "0044 20 7946 0958");
    assert_none("batch 0012 3456 7890");
}

#[test]
fn payment_cards() {
    assert_one(
        "card 4539 1488 0343 6467 exp 12/29",
        Kind::PaymentCard,
        "4539 1488 0343 6467",
    );
    assert_one(
        "4539-1488-0343-6467 12/29",
        Kind::PaymentCard,
        "4539-1488-0343-6467",
    );
    assert_one(
        "amex 3714 496353 98431",
        Kind::PaymentCard,
        "3714 496353 98431",
    );
    assert_one(
        "pan=5425233430109903;",
        Kind::PaymentCard,
        "5425233430109903",
    );
    // Luhn fails; a valid Luhn without a known issuer; inside a longer number.
    assert_none("4539 1488 0343 6468");
    assert_none("1234 5678 9012 3452");
    assert_none("4539148803436467123456");
    assert_none("1234 4539 1488 0343 6467");
    assert_none("4539 1488 0343 6467 7788");
}

#[test]
fn test_cards_are_reported_with_a_low_score() {
    let m = scan("test with 4111 1111 1111 1111");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].kind, Kind::PaymentCard);
    assert!(m[0].score < 0.5);
    let real = scan("pay with 4539 1488 0343 6467");
    assert!(real[0].score > 0.9);
}

#[test]
fn ibans() {
    assert_one(
        "IBAN: DE89 3704 0044 0532 0130 00 EUR",
        Kind::Iban,
        "DE89 3704 0044 0532 0130 00",
    );
    assert_one(
        "GB82WEST12345698765432",
        Kind::Iban,
        "GB82WEST12345698765432",
    );
    assert_one("to NL91ABNA0417164300.", Kind::Iban, "NL91ABNA0417164300");
    assert_none("DE89 3704 0044 0532 0130 01");
    assert_none("DE8937040044053201300");
    assert_none("XX89370400440532013000");
}

#[test]
fn ip_addresses() {
    assert_one("from 81.2.69.160:443", Kind::IpAddress, "81.2.69.160");
    assert_one("net 81.2.69.0/24", Kind::IpAddress, "81.2.69.0");
    assert_one(
        "peer 2a00:1450:4001:81b::200e",
        Kind::IpAddress,
        "2a00:1450:4001:81b::200e",
    );
    assert_none("version 1.2.3.4");
    // Context words count only at the start of a word.
    assert_one("resolver ip=8.8.8.8", Kind::IpAddress, "8.8.8.8");
    assert_one(
        "account 4539 1488 0343 6467",
        Kind::PaymentCard,
        "4539 1488 0343 6467",
    );
    assert_none("v10.2.3.4");
    assert_none("1.2.3.4-beta");
    assert_none("OID 1.3.6.1.4.1.311");
    assert_none("127.0.0.1 and 0.0.0.0 and 255.255.255.0");
    assert_none("999.1.1.1");
    assert_none("at 10:30:00, std::vec::Vec and Cafe::Babe");
    assert_none("mac 00:1a:2b:3c:4d:5e");
}

#[test]
fn national_ids() {
    assert_one("SSN 536-22-1234", Kind::UsSsn, "536-22-1234");
    assert_none("SSN 666-22-1234");
    assert_none("078-05-1120");
    assert_one("NI number AB 12 34 56 C", Kind::UkNino, "AB 12 34 56 C");
    assert_one("nino AB123456C", Kind::UkNino, "AB123456C");
    assert_none("GB123456C");
    assert_one("mijn BSN is 111222333", Kind::NlBsn, "111222333");
    assert_none("order 111222333");
    assert_none("BSN 123456789");
    assert_one("DNI 12345678Z", Kind::EsDni, "12345678Z");
    assert_one("NIE X1234567L", Kind::EsDni, "X1234567L");
    assert_none("12345678A");
    assert_one(
        "CF RSSMRA85T10A562S",
        Kind::ItCodiceFiscale,
        "RSSMRA85T10A562S",
    );
    assert_none("RSSMRA85T10A562T");
    assert_one(
        "NIR 2 55 08 14 168 025 38",
        Kind::FrNir,
        "2 55 08 14 168 025 38",
    );
    assert_one("255081416802538", Kind::FrNir, "255081416802538");
    assert_none("2 55 08 14 168 025 39");
    assert_one(
        "NIR 2 69 05 2A 004 011 29",
        Kind::FrNir,
        "2 69 05 2A 004 011 29",
    );
    assert_one("pnr 811218-9876", Kind::SePersonnummer, "811218-9876");
    assert_one("19811218-9876", Kind::SePersonnummer, "19811218-9876");
    assert_none("811218-9875");
    assert_one(
        "Steuer-ID 86 095 742 719",
        Kind::DeSteuerId,
        "86 095 742 719",
    );
    assert_one("IdNr: 86095742719", Kind::DeSteuerId, "86095742719");
    assert_none("86095742719");
    assert_one("Aadhaar 2341 2341 2346", Kind::InAadhaar, "2341 2341 2346");
    assert_one("aadhaar no 234123412346", Kind::InAadhaar, "234123412346");
    assert_none("2341 2341 2347");
}

#[test]
fn hard_negatives() {
    for text in [
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "commit 6f7b0962d1cdb4e6cb6a0e23bb862bc56193e816",
        "ISBN 978-3-16-148410-0 and 0-306-40615-2",
        "at 2024-01-15T10:30:00.123Z (1705314600123)",
        "order #4532015112830366 placed",
        "tracking 1Z999AA10123456784",
        "version 10.0.19041.1 build 2024.01.15",
        "price 1,234,567.89 EUR",
        "user@host: permission denied",
        "12345678901234567890",
        "model X-415-555-2671",
        "see section 3.2.1.4",
    ] {
        assert_none(text);
    }
}

#[test]
fn several_in_one_string_come_in_order() {
    let text = "Jane (jane@example.com, +1 415 555 2671) paid with 4539148803436467.";
    let kinds: Vec<&str> = found(text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["email", "phone", "payment-card"]);
}
