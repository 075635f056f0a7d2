//! Scans files and directories as text and prints each finding's rule,
//! file and line, with the match masked — to look for false alarms on a
//! real corpus: `cargo run --release --example scan -- <path>...`.

use std::path::Path;

fn visit(path: &Path, counts: &mut (usize, usize, usize)) {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            if entry
                .file_name()
                .is_some_and(|n| n == "target" || n == ".git")
            {
                continue;
            }
            visit(&entry, counts);
        }
        return;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    if bytes.len() > 4 << 20 || bytes.contains(&0) {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    counts.0 += 1;
    counts.1 += text.len();
    let (mut line, mut counted) = (1, 0);
    for m in warden_secrets::scan_field(None, &text) {
        counts.2 += 1;
        // Matches come in order: count lines incrementally.
        line += text[counted..m.start].matches('\n').count();
        counted = m.start;
        let value = &text[m.start..m.end];
        let shown: String = value.chars().take(6).collect();
        println!(
            "{:<28} {}:{line}  {shown}… ({} bytes)",
            m.rule.id,
            path.display(),
            value.len()
        );
    }
}

fn main() {
    let mut counts = (0, 0, 0);
    for arg in std::env::args().skip(1) {
        visit(Path::new(&arg), &mut counts);
    }
    eprintln!(
        "{} files, {:.1} MB, {} findings",
        counts.0,
        counts.1 as f64 / 1e6,
        counts.2
    );
}
