//! `metal-switchd-lab`: lab tools around metal-switchd (not shipped).

use clap::{Parser, Subcommand};

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
    /// Run metal-switchd once against a throwaway SONiC-like redis seeded with mini-lab leaf01
    Demo,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => anyhow::bail!("not implemented yet"),
    }
}
