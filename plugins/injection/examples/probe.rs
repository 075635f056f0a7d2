//! Prints what the scanner finds in each argument (a debugging aid).
//!
//! `cargo run -p warden-injection --example probe -- "text" ...` (in `plugins/`).

fn main() {
    for text in std::env::args().skip(1) {
        println!("{text:?}");
        for m in warden_injection::scan(&text) {
            println!(
                "  {:<22} {:<24} {:.2} {:?}",
                m.kind.as_str(),
                m.rule,
                m.score,
                &text[m.start..m.end]
            );
        }
    }
}
