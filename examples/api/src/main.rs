//! `wardstone-demo-api --issuer URL --audience ID --scope S --bind ADDR`: the sample API on its
//! own, against any issuer.

use clap::Parser;

#[derive(Parser)]
#[command(about = "A sample API that accepts Wardstone access tokens")]
struct Args {
    /// The tenant's issuer, e.g. http://127.0.0.1:8080/t/demo.
    #[arg(long, env = "DEMO_API_ISSUER")]
    issuer: String,
    /// This API's identifier (the tokens' `aud`).
    #[arg(long, env = "DEMO_API_AUDIENCE")]
    audience: String,
    /// The scope a token needs.
    #[arg(long, env = "DEMO_API_SCOPE", default_value = "read:demo")]
    scope: String,
    /// Address to listen on.
    #[arg(long, env = "DEMO_API_BIND", default_value = "127.0.0.1:8082")]
    bind: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    println!("API:       http://{}/", listener.local_addr()?);
    wardstone_demo_api::serve(
        listener,
        wardstone_demo_api::Config {
            issuer: args.issuer,
            audience: args.audience,
            scope: args.scope,
        },
    )
    .await
}
