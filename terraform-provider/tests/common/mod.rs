//! Running the real `terraform` CLI against this provider: a temporary configuration
//! directory, a CLI config file whose `dev_overrides` point at the provider binary cargo
//! built (no registry, no `terraform init`), and the API address and token in the
//! environment as users set them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use atoll_e2e::global::Global;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The terraform binary: the machine image has Terraform 1.11 at /usr/local/bin.
fn terraform_binary() -> PathBuf {
    let candidates = [
        std::env::var_os("TERRAFORM").map(PathBuf::from),
        Some(PathBuf::from("/usr/local/bin/terraform")),
        Some(PathBuf::from("/usr/bin/terraform")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the terraform CLI is missing: these tests run the real terraform (1.11, at /usr/local/bin/terraform in the machine image, or $TERRAFORM)"
            )
        })
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
    cli_config: PathBuf,
    address: String,
    token: String,
}

impl Workspace {
    pub fn new(global: &Global) -> Workspace {
        Workspace::for_api(&global.api(), &global.admin_token().unwrap())
    }

    /// A workspace whose provider is pointed at `address` (which need not answer).
    pub fn for_api(address: &str, token: &str) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("atoll-tf-")
            .tempdir()
            .unwrap();
        let provider = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-atoll"));
        let provider_dir = provider.parent().unwrap();
        let cli_config = dir.path().join("dev.tfrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"atoll/atoll\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .unwrap();
        Workspace {
            dir,
            cli_config,
            address: address.to_string(),
            token: token.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `main.tf`: an empty provider block (settings from the environment), then `body`.
    pub fn write(&self, body: &str) {
        self.write_with_provider("", body);
    }

    /// Writes `main.tf` with `provider` as the provider block's body.
    pub fn write_with_provider(&self, provider: &str, body: &str) {
        let config = format!(
            "terraform {{\n  required_providers {{\n    atoll = {{ source = \"atoll/atoll\" }}\n  }}\n}}\n\nprovider \"atoll\" {{\n{provider}\n}}\n\n{body}"
        );
        std::fs::write(self.dir.path().join("main.tf"), config).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(terraform_binary())
            .args(args)
            .arg("-no-color")
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("ATOLL_API_ADDRESS", &self.address)
            .env("ATOLL_API_TOKEN", &self.token)
            .env_remove("TF_LOG")
            .output()
            .expect("running terraform");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn apply(&self) -> Run {
        let run = self.run(&["apply", "-auto-approve", "-input=false"]);
        assert_eq!(run.code, 0, "terraform apply failed:\n{}", run.output());
        run
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error.
    pub fn plan(&self) -> Run {
        self.run(&["plan", "-detailed-exitcode", "-input=false"])
    }

    pub fn assert_empty_plan(&self, when: &str) {
        let run = self.plan();
        assert_eq!(
            run.code,
            0,
            "expected an empty plan {when}:\n{}",
            run.output()
        );
    }

    pub fn outputs(&self) -> serde_json::Value {
        let run = self.run(&["output", "-json"]);
        assert_eq!(run.code, 0, "{}", run.output());
        serde_json::from_str(&run.stdout).unwrap()
    }
}

/// GET on the global's API as the admin: (status, body).
pub fn get(global: &Global, path: &str) -> (u16, serde_json::Value) {
    send(global, "GET", path, None)
}

pub fn send(
    global: &Global,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    // Plain HTTP from loopback acts as the admin (the global's default).
    let body = body.map(|b| b.to_string());
    let (status, text) =
        atoll_e2e::process::http_request(global.http_port, method, path, body.as_deref())
            .expect("calling the global's API");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}
