//! `warden budgets`: show, set and trace budgets in the spend ledger.

use std::process::ExitCode;

use warden::budget::{BudgetChange, Ledger, Period};
use warden::config::Config;

use crate::BudgetsCommand;

/// Runs one `warden budgets` subcommand against the configured store.
pub(crate) async fn run(config: &Config, command: BudgetsCommand) -> anyhow::Result<ExitCode> {
    let ledger = Ledger::new(super::open_store(config).await?, config.budgets.clone());
    match command {
        BudgetsCommand::Show { name } => {
            let budgets = ledger.list().await?;
            let shown: Vec<_> = budgets
                .iter()
                .filter(|b| name.as_ref().is_none_or(|n| &b.budget.name == n))
                .collect();
            if let (Some(name), true) = (&name, shown.is_empty()) {
                eprintln!("error: no budget named `{name}`");
                return Ok(ExitCode::from(4));
            }
            for budget in shown {
                println!("{}", serde_json::to_string(budget)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        BudgetsCommand::Set {
            name,
            usd,
            tokens,
            requests,
            period,
            principal,
            tenant,
            team,
            model,
            by,
        } => {
            let change = BudgetChange {
                principal,
                tenant,
                team,
                model,
                limit_usd: usd,
                limit_tokens: tokens,
                limit_requests: requests,
                period: period.as_deref().map(|p| match p {
                    "daily" => Period::Daily,
                    "monthly" => Period::Monthly,
                    "minute" => Period::Minute,
                    _ => Period::Total,
                }),
            };
            match ledger.set(&name, change, &by).await? {
                Ok(status) => {
                    println!("{}", serde_json::to_string(&status)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("error: {message}");
                    Ok(ExitCode::from(4))
                }
            }
        }
        BudgetsCommand::History { name, limit } => {
            let history = ledger.history(&name, limit).await?;
            println!("{}", serde_json::to_string_pretty(&history)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
