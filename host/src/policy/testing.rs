//! OPA-style policy tests: every rule named `test_*` in a `*_test.rego` file
//! must evaluate to `true` (tests use `with input as` / `with data as` to
//! mock). Runs with line coverage of the bundle's policy files.

use serde::Serialize;

use super::BundleFiles;

/// One test's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// Rule path, e.g. `data.warden.authz_test.test_admin_may_call_anything`.
    pub name: String,
    /// File that defines it.
    pub file: String,
    /// Whether it evaluated to `true`.
    pub passed: bool,
    /// `pass`, `false`, `undefined`, or the evaluation error.
    pub outcome: String,
}

/// Line coverage of one policy file.
#[derive(Debug, Clone, Serialize)]
pub struct FileCoverage {
    /// File name within the bundle.
    pub file: String,
    /// Lines evaluated at least once.
    pub covered: usize,
    /// Lines that could have been evaluated.
    pub total: usize,
    /// Line numbers never evaluated.
    pub not_covered: Vec<u32>,
}

/// The outcome of a test run.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Every test, in file and name order.
    pub results: Vec<TestResult>,
    /// Coverage of each policy (non-test) file.
    pub coverage: Vec<FileCoverage>,
}

impl TestReport {
    /// Whether every test passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// Covered lines over coverable lines of all policy files, in percent.
    pub fn coverage_percent(&self) -> f64 {
        let (covered, total) = self
            .coverage
            .iter()
            .fold((0, 0), |(c, t), f| (c + f.covered, t + f.total));
        if total == 0 {
            100.0
        } else {
            covered as f64 * 100.0 / total as f64
        }
    }
}

/// Runs every test of the bundle with coverage enabled.
pub fn run(files: &BundleFiles) -> Result<TestReport, String> {
    let mut engine = regorus::Engine::new();
    engine.set_enable_coverage(true);
    files.add_to(&mut engine, true)?;
    let mut results = Vec::new();
    for (file, text) in files.tests() {
        let package = package_of(text).ok_or_else(|| format!("{file}: no package declaration"))?;
        for rule in test_rules(text) {
            let name = format!("data.{package}.{rule}");
            let outcome = match engine.eval_rule(name.clone()) {
                Ok(regorus::Value::Bool(true)) => "pass".to_string(),
                Ok(regorus::Value::Undefined) => "undefined".to_string(),
                Ok(other) => format!("{other}"),
                Err(e) => format!("error: {e}"),
            };
            results.push(TestResult {
                name,
                file: file.to_string(),
                passed: outcome == "pass",
                outcome,
            });
        }
    }
    let report = engine
        .get_coverage_report()
        .map_err(|e| format!("coverage: {e}"))?;
    let coverage = report
        .files
        .iter()
        .filter(|f| !f.path.ends_with("_test.rego"))
        .map(|f| FileCoverage {
            file: f.path.clone(),
            covered: f.covered.len(),
            total: f.covered.len() + f.not_covered.len(),
            not_covered: f.not_covered.iter().copied().collect(),
        })
        .collect();
    Ok(TestReport { results, coverage })
}

/// The package a Rego file declares.
fn package_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package "))
        .map(|p| p.trim().to_string())
}

/// Names of the `test_*` rules a file defines (rule heads start a line).
fn test_rules(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (name.starts_with("test_") && name.len() > 5).then_some(name)
        })
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::{package_of, test_rules};

    #[test]
    fn finds_package_and_test_rule_heads() {
        let text = "package warden.authz_test\n\nimport rego.v1\n\ntest_a if {\n  true\n}\n\
                    test_b if true\nnot_a_test if true\n  test_indented_is_a_body if true\n";
        assert_eq!(package_of(text).as_deref(), Some("warden.authz_test"));
        assert_eq!(test_rules(text), vec!["test_a", "test_b"]);
    }
}
