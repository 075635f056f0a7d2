//! Random number-shaped noise: no panics, and every match is a sorted,
//! non-overlapping range on character boundaries.

use warden_pii::scan;

#[test]
fn random_noise_never_panics_and_ranges_are_sound() {
    const PIECES: &[&str] = &[
        "0",
        "1",
        "2",
        "4",
        "5",
        "9",
        "12",
        "415",
        "2671",
        " ",
        "-",
        ".",
        "/",
        "(",
        ")",
        "+",
        ":",
        "::",
        "@",
        "A",
        "B",
        "D",
        "E",
        "X",
        "Z",
        "GB",
        "DE89",
        "a",
        "x",
        "ü",
        "€",
        "😀",
        "—",
        "example.com",
        "\n",
        "SSN ",
        "BSN ",
        "tel ",
        "IdNr: ",
        "aadhaar ",
        "=",
    ];
    let mut state: u64 = 0x0123_4567_89ab_cdef;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut total = 0;
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let text: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        let found = scan(&text);
        let mut last_end = 0;
        for m in &found {
            assert!(m.start < m.end && m.end <= text.len(), "{text:?}: {m:?}");
            assert!(m.start >= last_end, "overlap in {text:?}: {found:?}");
            assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            assert!((0.0..=1.0).contains(&m.score));
            last_end = m.end;
        }
        total += found.len();
    }
    // The noise is shaped to hit detectors now and then.
    assert!(total > 0);
}
