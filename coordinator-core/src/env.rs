//! The original's environment variables, read exactly as its documentation names them.

use crate::{
    ConfigError, CoordinatorConfig,
    config::{CommandsAuth, Secret, TlsConfig, Webhook, WebhookAuth},
};
use std::{collections::HashMap, time::Duration};

struct Vars(HashMap<String, String>);

impl Vars {
    /// A variable's value; unset and empty are the same.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn require(&self, name: &'static str, needed_by: &'static str) -> Result<&str, ConfigError> {
        self.get(name).ok_or(ConfigError::MissingVariable {
            variable: name,
            needed_by,
        })
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| invalid(name, value, "not a number in range")),
        }
    }

    fn yes_no(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_uppercase).as_deref() {
            None => Ok(default),
            Some("YES") => Ok(true),
            Some("NO") => Ok(false),
            Some(other) => Err(invalid(name, other, "expected YES or NO")),
        }
    }
}

fn invalid(variable: &'static str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidVariable {
        variable,
        value: value.to_owned(),
        reason,
    }
}

/// The variable names of one webhook, e.g. `KEY_VERIFICATION_*`.
struct HookNames {
    url: &'static str,
    auth: &'static str,
    user: &'static str,
    password: &'static str,
    password_alias: &'static str,
    token: &'static str,
    custom: &'static str,
}

const KEY_VERIFICATION: HookNames = HookNames {
    url: "KEY_VERIFICATION_URL",
    auth: "KEY_VERIFICATION_AUTH",
    user: "KEY_VERIFICATION_AUTH_USER",
    password: "KEY_VERIFICATION_PASSWORD",
    password_alias: "KEY_VERIFICATION_AUTH_PASSWORD",
    token: "KEY_VERIFICATION_AUTH_TOKEN",
    custom: "KEY_VERIFICATION_AUTH_CUSTOM",
};

const EVENT_CALLBACK: HookNames = HookNames {
    url: "EVENT_CALLBACK_URL",
    auth: "EVENT_CALLBACK_AUTH",
    user: "EVENT_CALLBACK_AUTH_USER",
    password: "EVENT_CALLBACK_PASSWORD",
    password_alias: "EVENT_CALLBACK_AUTH_PASSWORD",
    token: "EVENT_CALLBACK_AUTH_TOKEN",
    custom: "EVENT_CALLBACK_AUTH_CUSTOM",
};

fn webhook(vars: &Vars, names: &HookNames) -> Result<Option<Webhook>, ConfigError> {
    let Some(url) = vars.get(names.url) else {
        return Ok(None);
    };
    let auth = match vars.get(names.auth).map(str::to_ascii_lowercase).as_deref() {
        None => WebhookAuth::None,
        Some("basic") => {
            let password = vars
                .get(names.password)
                .or_else(|| vars.get(names.password_alias))
                .ok_or(ConfigError::MissingVariable {
                    variable: names.password,
                    needed_by: "the auth method is Basic",
                })?;
            let user = vars.require(names.user, "the auth method is Basic")?;
            WebhookAuth::Basic {
                user: user.to_owned(),
                password: Secret::new(password),
            }
        }
        Some("bearer") => WebhookAuth::Bearer {
            token: Secret::new(vars.require(names.token, "the auth method is Bearer")?),
        },
        Some("custom") => WebhookAuth::Custom {
            value: Secret::new(vars.require(names.custom, "the auth method is Custom")?),
        },
        Some(other) => {
            return Err(invalid(
                names.auth,
                other,
                "expected Basic, Bearer or Custom",
            ));
        }
    };
    Ok(Some(Webhook {
        url: url.to_owned(),
        auth,
    }))
}

fn commands_auth(vars: &Vars) -> Result<Option<CommandsAuth>, ConfigError> {
    Ok(
        match vars
            .get("COMMANDS_API_AUTH")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("basic") => Some(CommandsAuth::Basic {
                user: vars
                    .require("COMMANDS_API_AUTH_USER", "COMMANDS_API_AUTH is Basic")?
                    .to_owned(),
                password: Secret::new(
                    vars.require("COMMANDS_API_AUTH_PASSWORD", "COMMANDS_API_AUTH is Basic")?,
                ),
            }),
            Some("bearer") => Some(CommandsAuth::Bearer {
                token: Secret::new(
                    vars.require("COMMANDS_API_AUTH_TOKEN", "COMMANDS_API_AUTH is Bearer")?,
                ),
            }),
            Some(other) => {
                return Err(invalid(
                    "COMMANDS_API_AUTH",
                    other,
                    "expected Basic or Bearer",
                ));
            }
        },
    )
}

fn tls(vars: &Vars) -> Result<Option<TlsConfig>, ConfigError> {
    let (cert, key) = match (vars.get("SSL_CERT"), vars.get("SSL_KEY")) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::MissingVariable {
                variable: "SSL_KEY",
                needed_by: "SSL_CERT is set",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::MissingVariable {
                variable: "SSL_CERT",
                needed_by: "SSL_KEY is set",
            });
        }
        (Some(cert), Some(key)) => (cert, key),
    };
    let reload = vars.number("SSL_CHECK_RELOAD_SECONDS", 0u64)?;
    Ok(Some(TlsConfig {
        port: vars.number("SSL_PORT", 443)?,
        cert: cert.into(),
        key: key.into(),
        reload_check: (reload > 0).then(|| Duration::from_secs(reload)),
    }))
}

impl CoordinatorConfig {
    /// Reads the configuration from environment variables named exactly as in the original's
    /// documentation (pass `std::env::vars()`), fills in the defaults, and validates it.
    ///
    /// Unset and empty variables are the same. `*_PASSWORD` of Basic webhook auth is read under
    /// the seed's name (`KEY_VERIFICATION_PASSWORD`), and `*_AUTH_PASSWORD` is accepted too.
    pub fn from_env<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars = Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        let defaults = Self::default();
        let bind_address = match vars.get("BIND_ADDRESS") {
            None => defaults.bind_address,
            Some(value) => value
                .parse()
                .map_err(|_| invalid("BIND_ADDRESS", value, "not an IP address"))?,
        };
        let seconds = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            let value = vars.number(name, default.as_secs_f64())?;
            Duration::try_from_secs_f64(value)
                .map_err(|_| invalid(name, &value.to_string(), "not a duration"))
        };
        let config = Self {
            key_verification: webhook(&vars, &KEY_VERIFICATION)?,
            key_verification_timeout: seconds(
                "KEY_VERIFICATION_TIMEOUT_SECONDS",
                defaults.key_verification_timeout,
            )?,
            event_callback: webhook(&vars, &EVENT_CALLBACK)?,
            commands_auth: commands_auth(&vars)?,
            control_secret: vars.get("CONTROL_SECRET").map(Secret::new),
            http_port: vars.number("HTTP_PORT", defaults.http_port)?,
            tls: tls(&vars)?,
            bind_address,
            log_requests: vars.yes_no("LOG_REQUESTS", defaults.log_requests)?,
            log_debug: vars.yes_no("LOG_DEBUG", defaults.log_debug)?,
            id_max_length: vars.number("ID_MAX_LENGTH", defaults.id_max_length)?,
            callback_retry_interval: seconds(
                "EVENT_CALLBACK_RETRY_SECONDS",
                defaults.callback_retry_interval,
            )?,
            heartbeat_interval: seconds("HEARTBEAT_SECONDS", defaults.heartbeat_interval)?,
            link_timeout: seconds("LINK_TIMEOUT_SECONDS", defaults.link_timeout)?,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<CoordinatorConfig, ConfigError> {
        CoordinatorConfig::from_env(vars.iter().copied())
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let config = read(&[]).expect("valid");
        assert_eq!(config, CoordinatorConfig::default());
        assert_eq!(config.http_port, 80);
        assert!(config.log_requests && !config.log_debug);
        assert_eq!(
            config.control_secret, None,
            "no secret means every link is refused"
        );
        assert_eq!(
            config.commands_auth, None,
            "no auth means every command is refused"
        );
    }

    #[test]
    fn basic_auth_reads_the_documented_password_variable() {
        let config = read(&[
            ("KEY_VERIFICATION_URL", "http://app/verify"),
            ("KEY_VERIFICATION_AUTH", "Basic"),
            ("KEY_VERIFICATION_AUTH_USER", "coordinator"),
            ("KEY_VERIFICATION_PASSWORD", "pw"),
        ])
        .expect("valid");
        let hook = config.key_verification.expect("set");
        assert_eq!(
            hook.auth,
            WebhookAuth::Basic {
                user: "coordinator".into(),
                password: Secret::new("pw")
            }
        );

        let aliased = read(&[
            ("EVENT_CALLBACK_URL", "https://app/events"),
            ("EVENT_CALLBACK_AUTH", "basic"),
            ("EVENT_CALLBACK_AUTH_USER", "u"),
            ("EVENT_CALLBACK_AUTH_PASSWORD", "alias"),
        ])
        .expect("valid");
        assert!(
            matches!(aliased.event_callback.expect("set").auth, WebhookAuth::Basic { password, .. } if password.expose() == "alias")
        );
    }

    #[test]
    fn every_auth_method_requires_its_variable() {
        let cases = [
            (
                vec![
                    ("KEY_VERIFICATION_AUTH", "Basic"),
                    ("KEY_VERIFICATION_PASSWORD", "p"),
                ],
                "KEY_VERIFICATION_AUTH_USER",
            ),
            (
                vec![
                    ("KEY_VERIFICATION_AUTH", "Basic"),
                    ("KEY_VERIFICATION_AUTH_USER", "u"),
                ],
                "KEY_VERIFICATION_PASSWORD",
            ),
            (
                vec![("KEY_VERIFICATION_AUTH", "Bearer")],
                "KEY_VERIFICATION_AUTH_TOKEN",
            ),
            (
                vec![("KEY_VERIFICATION_AUTH", "Custom")],
                "KEY_VERIFICATION_AUTH_CUSTOM",
            ),
        ];
        for (mut vars, missing) in cases {
            vars.push(("KEY_VERIFICATION_URL", "http://app/verify"));
            match read(&vars) {
                Err(ConfigError::MissingVariable { variable, .. }) => assert_eq!(variable, missing),
                other => panic!("expected {missing} to be required, got {other:?}"),
            }
        }
        assert!(matches!(
            read(&[("COMMANDS_API_AUTH", "Bearer")]),
            Err(ConfigError::MissingVariable {
                variable: "COMMANDS_API_AUTH_TOKEN",
                ..
            })
        ));
    }

    #[test]
    fn unknown_methods_and_bad_values_are_named() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (
                &[
                    ("KEY_VERIFICATION_URL", "http://a"),
                    ("KEY_VERIFICATION_AUTH", "Digest"),
                ],
                "KEY_VERIFICATION_AUTH",
            ),
            (&[("COMMANDS_API_AUTH", "Custom")], "COMMANDS_API_AUTH"),
            (&[("HTTP_PORT", "http")], "HTTP_PORT"),
            (&[("HTTP_PORT", "70000")], "HTTP_PORT"),
            (&[("LOG_REQUESTS", "maybe")], "LOG_REQUESTS"),
            (&[("BIND_ADDRESS", "everywhere")], "BIND_ADDRESS"),
        ];
        for (vars, name) in cases {
            match read(vars) {
                Err(ConfigError::InvalidVariable { variable, .. }) => assert_eq!(variable, name),
                other => panic!("expected {name} to be invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn tls_needs_both_files_and_reads_its_port_and_reload() {
        assert!(matches!(
            read(&[("SSL_CERT", "c.pem")]),
            Err(ConfigError::MissingVariable {
                variable: "SSL_KEY",
                ..
            })
        ));
        let config = read(&[
            ("SSL_CERT", "c.pem"),
            ("SSL_KEY", "k.pem"),
            ("SSL_CHECK_RELOAD_SECONDS", "3600"),
        ])
        .expect("valid");
        let tls = config.tls.expect("set");
        assert_eq!(
            (tls.port, tls.reload_check),
            (443, Some(Duration::from_secs(3600)))
        );
    }

    #[test]
    fn the_remaining_variables_are_read() {
        let config = read(&[
            ("BIND_ADDRESS", "127.0.0.1"),
            ("LOG_REQUESTS", "no"),
            ("LOG_DEBUG", "YES"),
            ("ID_MAX_LENGTH", "64"),
            ("CONTROL_SECRET", "s3cret"),
            ("COMMANDS_API_AUTH", "Bearer"),
            ("COMMANDS_API_AUTH_TOKEN", "tok"),
            ("KEY_VERIFICATION_TIMEOUT_SECONDS", "2.5"),
            ("EVENT_CALLBACK_RETRY_SECONDS", "0.2"),
            ("HEARTBEAT_SECONDS", "1"),
            ("LINK_TIMEOUT_SECONDS", "3"),
        ])
        .expect("valid");
        assert_eq!(config.callback_retry_interval, Duration::from_millis(200));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(config.link_timeout, Duration::from_secs(3));
        assert_eq!(config.bind_address.to_string(), "127.0.0.1");
        assert!(!config.log_requests && config.log_debug);
        assert_eq!(config.id_max_length, 64);
        assert_eq!(
            config.control_secret.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert_eq!(
            config.commands_auth,
            Some(CommandsAuth::Bearer {
                token: Secret::new("tok")
            })
        );
        assert_eq!(config.key_verification_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn webhook_auth_becomes_the_authorization_header() {
        let basic = WebhookAuth::Basic {
            user: "Aladdin".into(),
            password: Secret::new("open sesame"),
        };
        // RFC 7617's example.
        assert_eq!(
            basic.header_value().as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        let bearer = WebhookAuth::Bearer {
            token: Secret::new("t"),
        };
        assert_eq!(bearer.header_value().as_deref(), Some("Bearer t"));
        let custom = WebhookAuth::Custom {
            value: Secret::new("Key abc"),
        };
        assert_eq!(custom.header_value().as_deref(), Some("Key abc"));
        assert_eq!(WebhookAuth::None.header_value(), None);
    }

    #[test]
    fn validation_applies_to_what_was_read() {
        assert!(matches!(
            read(&[("KEY_VERIFICATION_TIMEOUT_SECONDS", "30")]),
            Err(ConfigError::OutOfRange {
                setting: "key_verification_timeout",
                ..
            })
        ));
        assert!(matches!(
            read(&[("ID_MAX_LENGTH", "0")]),
            Err(ConfigError::OutOfRange {
                setting: "id_max_length",
                ..
            })
        ));
        assert!(matches!(
            read(&[("EVENT_CALLBACK_URL", "ftp://x")]),
            Err(ConfigError::OutOfRange {
                setting: "event_callback.url",
                ..
            })
        ));
        assert!(matches!(
            read(&[("HTTP_PORT", "443"), ("SSL_CERT", "c"), ("SSL_KEY", "k")]),
            Err(ConfigError::OutOfRange {
                setting: "tls.port",
                ..
            })
        ));
    }

    #[test]
    fn secrets_are_never_printed() {
        let config = read(&[
            ("CONTROL_SECRET", "hunter2"),
            ("COMMANDS_API_AUTH", "Bearer"),
            ("COMMANDS_API_AUTH_TOKEN", "hunter3"),
        ])
        .expect("valid");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("hunter3"),
            "{printed}"
        );
    }
}
