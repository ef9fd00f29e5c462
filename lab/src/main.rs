//! `metal-switchd-lab`: lab tools around metal-switchd (not shipped).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use metal_switchd_lab::{demo, generate, measure};

#[derive(Debug, Parser)]
#[command(
    name = "metal-switchd-lab",
    version,
    about = "Lab tools for metal-switchd (not part of the agent)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run metal-switchd (plan, apply, apply again) against a throwaway
    /// SONiC-like redis seeded with mini-lab leaf01 and print the CONFIG_DB changes
    Demo {
        /// Switch state to apply [default: the embedded lab/switches/leaf01.v1.json]
        #[arg(long, value_name = "FILE")]
        switch: Option<PathBuf>,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// Measure redis round trips and keys written by `metal-switchd apply --once` on
    /// leaf01 with generated tenants: fresh apply, no-op apply, single-port move
    Measure {
        /// Number of tenant VRFs
        #[arg(long, default_value_t = 60)]
        vrfs: usize,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// Print a generated v1 switch state for the mini-lab leaf
    GenSwitch {
        /// Number of tenant VRFs
        #[arg(long, default_value_t = 60)]
        vrfs: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { switch, agent } => demo::run(&demo::DemoOptions { switch, agent }),
        Command::Measure { vrfs, agent } => {
            let rows = measure::run(agent.as_deref(), vrfs)?;
            print!("{}", measure::table(&rows));
            Ok(())
        }
        Command::GenSwitch { vrfs } => {
            let doc = generate::switch_v1(&generate::SwitchShape::mini_lab(vrfs));
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
    }
}
