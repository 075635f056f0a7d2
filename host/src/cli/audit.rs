//! `warden audit`: read, verify, checkpoint and replay the audit trail.

use std::process::ExitCode;

use anyhow::Context;
use warden::config::Config;

use crate::AuditCommand;

/// Runs one `warden audit` subcommand against the configured store.
pub(crate) async fn run(config: &Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let store = super::open_store(config).await?;
    match command {
        AuditCommand::Query { filter, limit } => {
            for record in store.query(&filter.into_filter(Some(limit))).await? {
                println!("{}", serde_json::to_string(&record)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { filter } => {
            for record in store.query(&filter.into_filter(None)).await? {
                println!("{}", serde_json::to_string(&record)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Tail { lines } => {
            for record in store.tail(lines).await? {
                println!("{}", serde_json::to_string(&record)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Unseal { call_id } => {
            let record = store
                .by_call_id(&call_id)
                .await?
                .with_context(|| format!("no audit record for call {call_id}"))?
                .record;
            let sealed = record.sealed_text.as_deref().with_context(|| {
                format!("call {call_id} kept no text (policy did not oblige `keep_text`)")
            })?;
            let keys = warden::audit::TenantKeys::new(store);
            match keys
                .unseal(&record.tenant, &call_id, sealed)
                .await
                .map_err(|e| anyhow::anyhow!("call {call_id}: {e}"))?
            {
                Some(text) => {
                    println!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "call {call_id}: erased (tenant `{}` has no keys any more)",
                        record.tenant
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::EraseTenant { tenant } => {
            let keys = warden::audit::TenantKeys::new(store);
            let erased = keys
                .erase(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("erasing tenant `{tenant}`: {e}"))?;
            if erased {
                println!("erased: the text kept for tenant `{tenant}` can no longer be opened");
            } else {
                println!("tenant `{tenant}` had no keys: nothing was kept for it");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Replay { call_id, policy } => {
            let record = store
                .by_call_id(&call_id)
                .await?
                .with_context(|| format!("no audit record for call {call_id}"))?;
            let input = record.record.policy_input.as_deref().with_context(|| {
                format!(
                    "call {call_id} was recorded without its policy input; set \
                     `audit.store_policy_input = true` to make calls replayable"
                )
            })?;
            let input: serde_json::Value = serde_json::from_str(input)?;
            let bundle = warden::policy::PolicyBundle::load(
                &policy,
                &warden::policy::LoadOptions::default(),
            )?;
            let replayed = bundle.decide(
                warden::policy::Stage::Call,
                &warden::policy::PolicyInput::from_json(&input),
            );
            let (decision, reasons) = match &replayed {
                Ok(d) => (if d.allow { "allow" } else { "deny" }, d.reasons.clone()),
                Err(e) => ("error", vec![e.clone()]),
            };
            // The call stage is compared with the call stage. Records written
            // before stages were recorded only have the decision over all stages.
            let (recorded_decision, recorded_reasons) = match record
                .record
                .decision_at(warden::policy::Stage::Call.name())
            {
                Some(stage) => (stage.decision.as_str(), &stage.reasons),
                None => (record.record.decision.as_str(), &record.record.reasons),
            };
            let differs = decision != recorded_decision || &reasons != recorded_reasons;
            let report = serde_json::json!({
                "call_id": call_id,
                "recorded": {
                    "policy_hash": record.record.policy_hash,
                    "decision": recorded_decision,
                    "reasons": recorded_reasons,
                },
                "replayed": {
                    "policy_hash": bundle.hash(),
                    "decision": decision,
                    "reasons": reasons,
                },
                "differs": differs,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::from(u8::from(differs)))
        }
        AuditCommand::Verify {
            since,
            until,
            against,
            public_key,
            archive,
        } => {
            if !archive.is_empty() {
                let report = warden::audit::archive::verify_archives(&archive)?;
                return Ok(match report.failure {
                    None => {
                        println!(
                            "ok: {} records in {} archives verified",
                            report.records, report.archives
                        );
                        ExitCode::SUCCESS
                    }
                    Some(failure) => {
                        println!("FAILED: {failure}");
                        ExitCode::from(1)
                    }
                });
            }
            let report = match against {
                Some(path) => {
                    let key = checkpoint_public_key(config, public_key.as_deref())?;
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let checkpoint: warden::audit::checkpoint::Checkpoint =
                        serde_json::from_str(&text)
                            .with_context(|| format!("{} is not a checkpoint", path.display()))?;
                    warden::audit::checkpoint::verify_against(&store, &checkpoint, &key).await?
                }
                None => {
                    let range = warden::audit::VerifyRange { since, until };
                    warden::audit::verify_range(&store, range).await?
                }
            };
            match report.failure {
                None => {
                    println!(
                        "ok: {} records in {} chains verified",
                        report.records, report.chains
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(failure) => {
                    println!("FAILED: {failure}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Archive {
            before,
            to,
            dry_run,
        } => {
            let before = before.and_time(chrono::NaiveTime::MIN).and_utc();
            let dir = to.unwrap_or_default();
            if !dry_run {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let archived = warden::audit::archive::archive(&store, before, &dir, dry_run).await?;
            for segment in &archived {
                println!("{}", serde_json::to_string(segment)?);
            }
            if archived.is_empty() {
                eprintln!("nothing ends on or before {}", before.format("%Y-%m-%d"));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint { new } => {
            let checkpoint = if new {
                let path = config.audit.checkpoint_key.as_ref().with_context(|| {
                    format!("set `audit.checkpoint_key` in {}", config.path.display())
                })?;
                let key = warden::audit::checkpoint::load_signing_key(path)?;
                let signer = format!("warden audit checkpoint/{}", std::process::id());
                warden::audit::checkpoint::create(&store, &key, &signer).await?
            } else {
                store.latest_checkpoint().await?.with_context(|| {
                    "no checkpoint yet: set `audit.checkpoint_key`, or run \
                     `warden audit checkpoint --new`"
                })?
            };
            println!("{}", serde_json::to_string(&checkpoint)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The key checkpoints are verified with: `--public-key`, else the public half
/// of `audit.checkpoint_key`.
fn checkpoint_public_key(
    config: &Config,
    hex_key: Option<&str>,
) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    if let Some(hex_key) = hex_key {
        return warden::policy::signature::public_key(hex_key).map_err(|m| anyhow::anyhow!(m));
    }
    let path = config.audit.checkpoint_key.as_ref().with_context(|| {
        format!(
            "pass --public-key, or set `audit.checkpoint_key` in {}",
            config.path.display()
        )
    })?;
    Ok(warden::audit::checkpoint::load_signing_key(path)?.verifying_key())
}
