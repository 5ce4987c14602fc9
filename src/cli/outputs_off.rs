//! `massaged outputs-off`: the command line around [`massaged::outputs_off`].

use super::runtime;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

/// Never fails on the configuration: every problem is a note and the defaults apply. Exits
/// non-zero only when an output could not be turned off.
pub(crate) fn outputs_off(path: Option<&Path>) -> Result<ExitCode> {
    // The variables that are not UTF-8 are left out; the rest still apply.
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(massaged::config::ENV_PREFIX))
        .collect();
    let (plan, report) = runtime()?.block_on(massaged::outputs_off::run(path, &env));
    for note in &plan.notes {
        eprintln!("massaged outputs-off: note: {note}");
    }
    for line in &report.done {
        println!("{line}");
    }
    for line in &report.failed {
        eprintln!("massaged outputs-off: FAILED: {line}");
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
