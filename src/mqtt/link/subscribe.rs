//! Subscriptions: what is asked of the broker for each filter, and their renewal after every
//! ConnAck (the session is clean, so the broker forgets them with every connection).

use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule, SubAck, SubscribeReasonCode};

/// A QoS 1 subscription to `filter` with "retain as published": a live publish keeps the
/// publisher's retain flag, so a retained command is recognised whenever it arrives. Retained
/// messages are still sent on every (re)subscription, and our own publishes still come back.
pub(super) fn subscription(filter: &str) -> Filter {
    Filter {
        path: filter.to_owned(),
        qos: QoS::AtLeastOnce,
        nolocal: false,
        preserve_retain: true,
        retain_forward_rule: RetainForwardRule::OnEverySubscribe,
    }
}

/// Renews every subscription from a separate task, so the poll task never waits on the
/// request channel it alone drains.
pub(super) fn resubscribe(client: &AsyncClient, filters: &[Filter]) {
    if filters.is_empty() {
        return;
    }
    let client = client.clone();
    let filters = filters.to_vec();
    tokio::spawn(async move {
        if let Err(error) = client.subscribe_many(filters).await {
            tracing::warn!(%error, "mqtt resubscribe failed: link closed");
        }
    });
}

/// Warns about the subscriptions `suback` refused; the link still counts as connected, since
/// the others work.
pub(super) fn warn_refused(filters: &[Filter], suback: &SubAck) {
    let refused = refused(suback);
    if !refused.is_empty() {
        tracing::warn!(filters = ?filters, reasons = ?refused, "mqtt broker refused a subscription");
    }
}

/// The reason codes in `suback` that are not a success.
fn refused(suback: &SubAck) -> Vec<&SubscribeReasonCode> {
    suback
        .return_codes
        .iter()
        .filter(|code| !matches!(code, SubscribeReasonCode::Success(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_keep_the_retain_flag_as_published() {
        let filter = subscription("dev/+/set");
        assert_eq!(filter.path, "dev/+/set");
        assert_eq!(filter.qos, QoS::AtLeastOnce);
        assert!(filter.preserve_retain);
        assert!(!filter.nolocal);
        assert_eq!(
            filter.retain_forward_rule,
            RetainForwardRule::OnEverySubscribe
        );
    }

    #[test]
    fn only_failed_reason_codes_count_as_refused() {
        let suback = SubAck {
            pkid: 1,
            return_codes: vec![
                SubscribeReasonCode::Success(QoS::AtLeastOnce),
                SubscribeReasonCode::NotAuthorized,
                SubscribeReasonCode::Success(QoS::AtMostOnce),
            ],
            properties: None,
        };
        assert_eq!(refused(&suback), [&SubscribeReasonCode::NotAuthorized]);
    }
}
