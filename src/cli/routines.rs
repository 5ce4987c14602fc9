//! `massaged routines`: the routine library as a table on stdout, or as the Markdown page and
//! pictures under `docs/` (`--markdown DIR`).

use super::{emit, load};
use anyhow::{Context, Result};
use massaged::config::Config;
use massaged::core::Routine;
use std::path::Path;
use std::process::ExitCode;

/// Lists the routines, or with `markdown` writes their page and pictures there.
pub(crate) fn routines(config: Option<&Path>, markdown: Option<&Path>) -> Result<ExitCode> {
    let config = load(config)?;
    match markdown {
        Some(dir) => write_library_docs(&config, dir)?,
        None => emit(&table(&config.routine_library()?))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `DIR/routines.md` and a picture of every routine as `DIR/routines/<id>.svg`.
fn write_library_docs(config: &Config, dir: &Path) -> Result<()> {
    let docs =
        massaged::picture::library_docs(&config.engine_config()?, &config.routine_library()?)?;
    let pictures = dir.join("routines");
    std::fs::create_dir_all(&pictures)
        .with_context(|| format!("creating {}", pictures.display()))?;
    for (file, svg) in &docs.pictures {
        let path = pictures.join(file);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    let page = dir.join("routines.md");
    std::fs::write(&page, &docs.markdown).with_context(|| format!("writing {}", page.display()))?;
    Ok(())
}

/// Id, name, length (m:ss) and description, a routine a line, in aligned columns.
fn table(routines: &[Routine]) -> String {
    use std::fmt::Write as _;
    let width = routines.iter().map(|r| r.id.len()).max().unwrap_or(2);
    let name_width = routines.iter().map(|r| r.name.len()).max().unwrap_or(4);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<width$}  {:<name_width$}  {:>6}  description",
        "id", "name", "length"
    );
    for r in routines {
        let secs = r.duration().as_secs();
        let _ = writeln!(
            text,
            "{:<width$}  {:<name_width$}  {:>3}:{:02}  {}",
            r.id,
            r.name,
            secs / 60,
            secs % 60,
            r.description
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_every_builtin_under_its_header() {
        let routines = Config::default().routine_library().expect("built-ins");
        let text = table(&routines);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), routines.len() + 1);
        let name_at = lines[0].find("name").expect("header");
        let description_at = lines[0].find("description").expect("header");
        for (line, routine) in lines[1..].iter().zip(&routines) {
            assert!(line.starts_with(&routine.id), "{line}");
            assert_eq!(line[name_at..].find(&routine.name), Some(0), "{line}");
            assert_eq!(
                line.get(description_at..),
                Some(routine.description.as_str())
            );
        }
    }
}
