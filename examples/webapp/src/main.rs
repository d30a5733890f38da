//! `wardstone-demo-webapp --issuer URL --client-id ID --client-secret S --api-url URL
//! --audience ID`: the sample web app on its own, against any issuer.

use clap::Parser;

#[derive(Parser)]
#[command(about = "A sample server-side web app that signs in with Wardstone")]
struct Args {
    /// The tenant's issuer, e.g. http://127.0.0.1:8080/t/demo.
    #[arg(long, env = "DEMO_WEBAPP_ISSUER")]
    issuer: String,
    /// The application's client id.
    #[arg(long, env = "DEMO_WEBAPP_CLIENT_ID")]
    client_id: String,
    /// The application's client secret.
    #[arg(long, env = "DEMO_WEBAPP_CLIENT_SECRET")]
    client_secret: String,
    /// The API to call.
    #[arg(long, env = "DEMO_WEBAPP_API_URL")]
    api_url: String,
    /// The API's identifier (requested as `audience`).
    #[arg(long, env = "DEMO_WEBAPP_AUDIENCE")]
    audience: String,
    /// Extra scopes to request besides `openid profile email offline_access`.
    #[arg(long, env = "DEMO_WEBAPP_SCOPE", default_value = "read:demo")]
    scope: String,
    /// Address to listen on; the app's URL is `http://{bind}/` (register
    /// `http://{bind}/callback` as a callback and `http://{bind}/` as a logout URL).
    #[arg(long, env = "DEMO_WEBAPP_BIND", default_value = "127.0.0.1:8081")]
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
    let base_url = format!("http://{}", listener.local_addr()?);
    println!("Web app:   {base_url}/");
    wardstone_demo_webapp::serve(
        listener,
        wardstone_demo_webapp::Config {
            issuer: args.issuer,
            client_id: args.client_id,
            client_secret: args.client_secret,
            base_url,
            api_url: args.api_url,
            audience: args.audience,
            scope: args.scope,
        },
    )
    .await
}
