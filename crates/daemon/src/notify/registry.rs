//! The notifiers of this configuration, by kind: one line per notifier below.

use super::Notifier;
use pipeline_responder_core::config::Config;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every configured notifier, by kind.
#[derive(Debug, Clone, Default)]
pub struct Notifiers {
    by_kind: BTreeMap<&'static str, Arc<dyn Notifier>>,
}

impl Notifiers {
    /// The notifiers `config` turns on.
    pub fn from_config(
        config: &Arc<Config>,
        http: &reqwest::Client,
        sdk: &pipeline_responder_aws::SdkConfig,
    ) -> Self {
        let n = &config.notifiers;
        let mut all: Vec<Arc<dyn Notifier>> = Vec::new();
        if let Some(c) = &n.slack {
            let slack = super::slack::Slack::new(c.clone(), http.clone());
            let config = Arc::clone(config);
            all.push(Arc::new(super::slack::SlackNotifier { slack, config }));
        }
        if n.sns_enabled {
            let sns = pipeline_responder_aws::sns::SnsPublisher::new(sdk);
            all.push(Arc::new(super::sns::SnsNotifier { sns }));
        }
        if let Some(c) = &n.pagerduty {
            all.push(Arc::new(super::pagerduty::PagerDuty {
                config: c.clone(),
                http: http.clone(),
            }));
        }
        if let Some(c) = &n.opsgenie {
            all.push(Arc::new(super::opsgenie::Opsgenie {
                config: c.clone(),
                http: http.clone(),
            }));
        }
        if let Some(c) = &n.teams {
            all.push(Arc::new(super::teams::Teams {
                config: c.clone(),
                http: http.clone(),
            }));
        }
        if let Some(c) = &n.webhook {
            all.push(Arc::new(super::webhook::Webhook {
                config: c.clone(),
                http: http.clone(),
            }));
        }
        Self::of(all)
    }

    /// These notifiers (tests hand in fakes).
    pub fn of(list: Vec<Arc<dyn Notifier>>) -> Self {
        Self {
            by_kind: list.into_iter().map(|n| (n.kind(), n)).collect(),
        }
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Notifier>> {
        self.by_kind.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_kind.keys().copied()
    }
}
