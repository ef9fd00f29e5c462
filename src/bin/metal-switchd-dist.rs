//! metal-switchd-docs: writes the man pages and shell completions of
//! `metal-switchd` from its command-line definition (`cli::Cli`), so they
//! cannot drift from it (feature `docs`; `./dev package` runs it and ships
//! the result; the generators are not part of the shipped binary).
//!
//! `metal-switchd-docs OUT_DIR` writes
//! - `OUT_DIR/man/metal-switchd.1` (with the sections clap does not know:
//!   exit status, environment, files, see also) and one page per
//!   sub-command (`metal-switchd-plan.1`, `metal-switchd-render-frr.1`, …);
//! - `OUT_DIR/completions/metal-switchd.bash`, `_metal-switchd` (zsh) and
//!   `metal-switchd.fish`.
//!
//! `metal-switchd-dist sbom IN OUT` puts cargo-sbom's SPDX 2.3 document
//! right where SPDX validators refuse it (see `sbom`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use metal_switchd::cli::Cli;

const BIN: &str = "metal-switchd";

/// The sections of the main page that are not in the command's definition
/// (roff; what README.md and debian/README.md say).
const MAIN_EXTRA: &str = r#".SH "EXIT STATUS"
0 done; 1 runtime error (API, redis, SONiC, FRR); 2 invalid input
(configuration or desired state), nothing written.
.B status
exits 0 when the daemon runs and its status is current, 3 when it is not
running, 4 when its status is stale or unreadable.
.SH ENVIRONMENT
Every configuration key can be set as METAL_SWITCHD_\fIKEY\fR, metal-core's
settings also as METAL_CORE_\fIKEY\fR. Under systemd the unit reads
.I /etc/default/metal-core
and
.IR /etc/default/metal-switchd .
.SH FILES
.TP
.I /etc/metal-switchd/config.toml
The configuration (commented defaults).
.TP
.I /run/metal-switchd/status.json
The daemon's status (state_directory).
.TP
.I /etc/sonic/frr/frr.conf
The FRR configuration the agent installs (frr_config).
.TP
.I /usr/share/doc/metal-switchd/sbom.spdx.json
The software bill of materials of this package (SPDX 2.3).
.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.I /usr/share/doc/metal-switchd/README.md
(install, upgrade from metal-core, operation, alerts),
.I /usr/share/doc/metal-switchd/configuration.md
(every key).
"#;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: metal-switchd-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("metal-switchd-docs: {e}");
            ExitCode::from(1)
        }
    }
}

fn write_all(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man_dir = out.join("man");
    let completion_dir = out.join("completions");
    for d in [&man_dir, &completion_dir] {
        std::fs::create_dir_all(d)?;
    }
    // (The about line without the leading "metal-switchd:", which NAME
    // already says.)
    let mut cmd = Cli::command()
        .about("the metal-stack agent of a SONiC leaf switch")
        .disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();

    // The main page: clap's sections, then ours, then the version.
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(MAIN_EXTRA.as_bytes());
    man.render_version_section(&mut page)?;
    let main_page = man_dir.join(man.get_filename());
    std::fs::write(&main_page, page)?;
    files.push(main_page);
    // One page per sub-command, named by clap (`metal-switchd-render-frr`).
    sub_pages(&cmd, &man_dir, &mut files)?;

    for (shell, name) in [
        (Shell::Bash, format!("{BIN}.bash")),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ] {
        let path = completion_dir.join(name);
        let mut f = std::fs::File::create(&path)?;
        clap_complete::generate(shell, &mut cmd, BIN, &mut f);
        f.flush()?;
        files.push(path);
    }
    Ok(files)
}

fn sub_pages(cmd: &clap::Command, dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let path = clap_mangen::Man::new(sub.clone()).generate_to(dir)?;
        files.push(path);
        sub_pages(sub, dir, files)?;
    }
    Ok(())
}
