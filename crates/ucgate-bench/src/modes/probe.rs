//! `ucgate-bench probe URL` (placeholder until the probe lands).
#[derive(clap::Args)]
pub struct Args {
    /// ws://, wss://, http:// or https:// (BOSH) URL of the gateway route.
    pub url: String,
}

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("probe of {} is not built yet", args.url)
}
