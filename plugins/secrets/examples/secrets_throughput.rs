//! Throughput of the verifier on mixed text: prose, logs, code, JSON and
//! configuration with a few secrets and many near-misses.
//!
//! `cargo run --release -p warden-secrets --example secrets_throughput` (in `plugins/`).

use std::time::{Duration, Instant};

use warden_secrets::testkit::{Rng, expand};

/// Pieces of mixed text; templates are expanded with fresh random parts.
const PIECES: &[&str] = &[
    "The quarterly report shows revenue grew 12% while costs stayed flat. The team shipped the new billing pipeline and retired two legacy services; next quarter focuses on reliability and on-call load.\n",
    "2026-11-30T12:00:01Z INFO request_id=[[uuid]] method=GET path=/v1/orders/[[d6]] status=200 duration_ms=[[d2]]\n",
    "2026-11-30T12:00:02Z WARN token refresh took [[d3]]ms for session [[h32]]; retrying with backoff\n",
    "fn handle(req: Request) -> Result<Response, Error> {\n    let key = cache_key(&req.path);\n    if let Some(hit) = cache.get(&key) { return Ok(hit); }\n    let body = upstream.fetch(&req).await?;\n    Ok(Response::new(body))\n}\n",
    "{\"id\": \"[[uuid]]\", \"name\": \"widget\", \"price\": 19.99, \"tags\": [\"blue\", \"large\"], \"sha\": \"[[h40]]\"}\n",
    "commit [[h40]]\nAuthor: Dev <dev@corp.example>\n\n    Update dependencies; see https://github.com/acme/app/pull/[[d4]]\n",
    "image: registry.corp/app@sha256:[[h64]]\nreplicas: 3\nresources:\n  limits:\n    memory: 512Mi\n",
    "Please set the password= option and the api_key in your config before running; tokens expire after 60 minutes.\n",
    "def get_client():\n    api_key = os.environ[\"SERVICE_API_KEY\"]\n    return Client(api_key=api_key, timeout=30)\n",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam.\n",
    "payload=SGVsbG8sIHdvcmxkISBUaGlzIGlzIGEgdGVzdCBtZXNzYWdlIGZvciB0aGUgcXVldWUu checksum=[[h32]]\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[[b43]] ci@runner\n",
];

/// Secrets sprinkled in, about one per 4 KB.
const SECRETS: &[&str] = &[
    "GITHUB_TOKEN=ghp_[[a36]]\n",
    "aws_access_key_id = AKIA[[B16]]\naws_secret_access_key = [[b40]]\n",
    "DATABASE_URL=postgres://app:[[a20]]@db.internal:5432/app\n",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIx[[u30]].[[u43]]\n",
    "client_secret: [[u40]]\n",
    "OPENAI_API_KEY=sk-proj-[[u74]]T3BlbkFJ[[u74]]\n",
];

fn mixed_text(bytes: usize, rng: &mut Rng) -> String {
    let mut text = String::with_capacity(bytes + 512);
    let mut next_secret = 4096;
    while text.len() < bytes {
        if text.len() >= next_secret {
            let template = *rng.pick(SECRETS);
            text.push_str(&expand(template, rng).0);
            next_secret += 4096;
        } else {
            let template = *rng.pick(PIECES);
            text.push_str(&expand(template, rng).0);
        }
    }
    text.truncate(text.floor_char_boundary(bytes));
    text
}

/// Dense secrets: the evaluation cases (half of them secrets, the rest
/// near misses) with random noise between them; a secret every ~200 bytes.
fn dense_text(bytes: usize, rng: &mut Rng) -> String {
    let cases: Vec<String> = include_str!("../eval/cases.jsonl")
        .lines()
        .map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            case["text"].as_str().unwrap().to_string()
        })
        .collect();
    let mut text = String::with_capacity(bytes + 4096);
    while text.len() < bytes {
        let case: &String = rng.pick(&cases);
        text.push_str(case);
        let noise = rng.below(200);
        text.push_str(&expand(&format!(" [[b{noise}]]\n"), rng).0);
    }
    text.truncate(text.floor_char_boundary(bytes));
    text
}

/// A JSON object of `fields` strings of about 1 KB each, named like
/// configuration keys, so the field-name context path runs too.
fn json_document(fields: usize, rng: &mut Rng) -> String {
    const NAMES: &[&str] = &[
        "description",
        "notes",
        "api_key",
        "output",
        "token",
        "log",
        "password",
        "body",
    ];
    let mut object = serde_json::Map::new();
    for i in 0..fields {
        let name = format!("{}_{i}", rng.pick(NAMES));
        object.insert(name, mixed_text(1024, rng).into());
    }
    serde_json::Value::Object(object).to_string()
}

fn measure(label: &str, content: &str, min_time: Duration) {
    let kb = content.len() as f64 / 1024.0;
    let mut times = Vec::new();
    let mut findings = 0;
    let started = Instant::now();
    while times.len() < 5 || started.elapsed() < min_time {
        let run = Instant::now();
        findings = warden_secrets::verdict(content)
            .expect("a verdict")
            .findings
            .len();
        times.push(run.elapsed().as_secs_f64());
    }
    // The machine is shared: the median and the best run say more than the mean.
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let best = times[0];
    println!(
        "{label:<32} {kb:>7.1} KB  median {:>7.2} ms = {:>6.2} µs/KB  best {:>6.2} µs/KB  ({findings} findings, {} runs)",
        median * 1e3,
        median * 1e6 / kb,
        best * 1e6 / kb,
        times.len(),
    );
}

fn main() {
    let started = Instant::now();
    let scanner = warden_secrets::engine::scanner();
    let prefilter = started.elapsed();
    let mut rng = Rng::from_label("first call");
    let first = serde_json::to_string(&mixed_text(2048, &mut rng)).unwrap();
    let started = Instant::now();
    warden_secrets::verdict(&first).unwrap();
    let first_call = started.elapsed();
    let started = Instant::now();
    scanner.compile_all().unwrap();
    println!(
        "{} rules: keyword prefilter built in {:.1} ms; a first 2 KB call (compiling the regexes it needs) {:.1} ms; all regexes compiled in {:.1} ms",
        scanner.rules().len(),
        prefilter.as_secs_f64() * 1e3,
        first_call.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut rng = Rng::from_label("throughput");
    let small = serde_json::to_string(&mixed_text(10 * 1024, &mut rng)).unwrap();
    let large = serde_json::to_string(&mixed_text(1024 * 1024, &mut rng)).unwrap();
    let document = json_document(1024, &mut rng);
    let min_time = Duration::from_secs(2);
    measure("10 KB mixed text (one string)", &small, min_time);
    measure("1 MB mixed text (one string)", &large, min_time);
    measure("1 MB JSON object (1024 fields)", &document, min_time);
    let dense = serde_json::to_string(&dense_text(1024 * 1024, &mut rng)).unwrap();
    measure("1 MB dense secrets (one string)", &dense, min_time);
    // Cold numbers above include warming up the code (a JIT, under a wasm
    // engine); a second, fresh rule set shows the cost of compiling alone.
    let started = Instant::now();
    let fresh = warden_secrets::engine::Scanner::new(warden_secrets::rules::RULES).unwrap();
    let built = started.elapsed();
    fresh.compile_all().unwrap();
    println!(
        "fresh rule set with warm code: prefilter {:.1} ms, all {} regexes {:.1} ms",
        built.as_secs_f64() * 1e3,
        fresh.rules().len(),
        (started.elapsed() - built).as_secs_f64() * 1e3
    );
    if std::env::args().any(|a| a == "--per-rule") {
        per_rule(&serde_json::from_str::<String>(&large).unwrap());
    }
}

/// The rules that cost the most on the 1 MB text, and the prefilter itself.
fn per_rule(text: &str) {
    let scanner = warden_secrets::engine::scanner();
    let mut prefilter = f64::INFINITY;
    let mut candidates = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        candidates = scanner.candidates(text.as_bytes());
        prefilter = prefilter.min(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "prefilter: {prefilter:.2} ms, {} of {} rules enabled",
        candidates.len(),
        scanner.rules().len()
    );
    let mut costs: Vec<(f64, &str)> = candidates
        .iter()
        .map(|&index| {
            let best = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    scanner.scan_rule(index, text);
                    started.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min);
            (best, scanner.rules()[index].id)
        })
        .collect();
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, id) in costs.iter().take(12) {
        println!("  {ms:>7.2} ms  {id}");
    }
}
