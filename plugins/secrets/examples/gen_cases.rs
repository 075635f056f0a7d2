//! Writes the evaluation set, `eval/cases.jsonl`, from the deterministic
//! generator in `eval/generate.rs`:
//! `cargo run --example gen_cases` (in `plugins/`).

#[path = "../eval/generate.rs"]
mod generate;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/cases.jsonl");
    let cases = generate::cases();
    std::fs::write(path, generate::jsonl(&cases)).expect("writing eval/cases.jsonl");
    let positives = cases.iter().filter(|c| c.secret).count();
    println!(
        "wrote {path}: {positives} positive, {} negative",
        cases.len() - positives
    );
}
