//! Finding and connecting to a cluster the way kubectl does: `KUBECONFIG`
//! (or `~/.kube/config`), its current context or the one asked for, the
//! context's namespace; inside a pod, the service account.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// Where to connect, as the user said it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// A kubeconfig file; default `KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Default: the kubeconfig's current context.
    pub context: Option<String>,
    /// Namespaces to watch; default: the context's namespace.
    pub namespaces: Vec<String>,
}

/// A connected client and what it is connected to.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    /// The context's name, or `in-cluster`.
    pub context: String,
    /// The API server's URL, for messages.
    pub server: String,
    pub namespaces: Vec<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

fn read_kubeconfig(path: Option<&PathBuf>) -> Result<Option<Kubeconfig>, String> {
    let result = match path {
        Some(path) => Kubeconfig::read_from(path).map(Some),
        None => match Kubeconfig::from_env() {
            Ok(Some(config)) => Ok(Some(config)),
            Ok(None) => {
                let default = dirs::home_dir().map(|h| h.join(".kube").join("config"));
                match default.filter(|p| p.exists()) {
                    Some(path) => Kubeconfig::read_from(path).map(Some),
                    None => Ok(None),
                }
            }
            Err(e) => Err(e),
        },
    };
    result.map_err(|e| format!("cannot read the kubeconfig: {e}"))
}

/// The context a connection would use: the one asked for, else the
/// kubeconfig's current one, else `in-cluster` when there is no kubeconfig.
pub fn context_name(target: &Target) -> Option<String> {
    if target.context.is_some() {
        return target.context.clone();
    }
    match read_kubeconfig(target.kubeconfig.as_ref()) {
        Ok(Some(kubeconfig)) => kubeconfig.current_context,
        Ok(None) => Some("in-cluster".into()),
        Err(_) => None,
    }
}

/// The contexts the kubeconfig offers, for `:ctx` and its error messages.
pub fn contexts(target: &Target) -> Vec<String> {
    read_kubeconfig(target.kubeconfig.as_ref()).ok().flatten().map_or_else(Vec::new, |k| {
        let mut names: Vec<String> = k.contexts.into_iter().map(|c| c.name).collect();
        names.sort();
        names
    })
}

/// Connects as kubectl would. The error says what to check.
pub async fn connect(target: &Target) -> Result<Connection, String> {
    let (config, context) = match read_kubeconfig(target.kubeconfig.as_ref())? {
        Some(kubeconfig) => {
            let context = target.context.clone().or_else(|| kubeconfig.current_context.clone());
            let Some(context) = context else {
                return Err("the kubeconfig has no current context: pass --context or set [kubernetes] context".into());
            };
            if !kubeconfig.contexts.iter().any(|c| c.name == context) {
                let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
                return Err(format!("no context `{context}` in the kubeconfig (it has: {})", known.join(", ")));
            }
            let options = KubeConfigOptions { context: Some(context.clone()), ..KubeConfigOptions::default() };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("context `{context}`: {e}"))?;
            (config, context)
        }
        None => {
            let config = Config::incluster()
                .map_err(|e| format!("no kubeconfig (KUBECONFIG, ~/.kube/config) and not running in a pod ({e})"))?;
            (config, "in-cluster".to_owned())
        }
    };
    let namespaces =
        if target.namespaces.is_empty() { vec![config.default_namespace.clone()] } else { target.namespaces.clone() };
    // Without it, a connection that went silent (a partition) would look live
    // forever. Watches end on the server sooner (see `watch`), so only a dead
    // connection reaches it; an idle log stream just reconnects.
    let mut config = config;
    config.read_timeout = Some(std::time::Duration::from_secs(120));
    // Shown on screen: never with credentials in it.
    let mut url = config.cluster_url.clone().into_parts();
    if let Some(authority) = url.authority.as_ref().filter(|a| a.as_str().contains('@')) {
        let host = authority.as_str().rsplit_once('@').map_or("", |(_, host)| host).to_owned();
        url.authority = host.parse().ok();
    }
    let server = hyper::Uri::from_parts(url).map_or_else(|_| "the API server".to_owned(), |u| u.to_string());
    let client = Client::try_from(config).map_err(|e| format!("context `{context}`: {e}"))?;
    Ok(Connection { client, context, server, namespaces })
}
