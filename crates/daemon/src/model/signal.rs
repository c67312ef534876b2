//! What a collector saw that may need a person, beside the samples it
//! exports: the status page's attention board and timeline are built from
//! these rather than by reading metric families back.

/// One thing a collector saw about a tenant (or the partner) that a person
/// may have to act on, or a deadline to show. Text in it came from
/// Microsoft and is already scrubbed; a page still has to escape it.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// A SKU with no seat left: `consumedUnits` ≥ `prepaidUnits.enabled`.
    /// <https://learn.microsoft.com/graph/api/resources/subscribedsku>
    LicencesExhausted {
        /// `skuPartNumber` (or `skuId`).
        sku: String,
        /// `consumedUnits`.
        consumed: f64,
        /// `prepaidUnits.enabled`.
        enabled: f64,
    },
    /// An Azure subscription whose `state` is not `Enabled` (`Disabled`,
    /// `PastDue`, `Warned`, …).
    /// <https://learn.microsoft.com/rest/api/resources/subscriptions/list>
    Subscription {
        /// `subscriptionId`.
        id: String,
        /// `displayName`.
        name: String,
        /// `state`.
        state: String,
    },
    /// A Microsoft 365 service that is neither `serviceOperational` nor
    /// `serviceRestored`.
    /// <https://learn.microsoft.com/graph/api/resources/servicehealth>
    Service {
        /// `service`, e.g. "Exchange Online".
        service: String,
        /// `status`, a `serviceHealthStatus` value.
        status: String,
    },
    /// A Microsoft 365 subscription that ends rather than renews by itself:
    /// a trial (Graph `isTrial`, ending at `nextLifecycleDateTime`), or a
    /// Partner Center subscription with `autoRenewEnabled: false` (ending at
    /// its commitment end).
    /// <https://learn.microsoft.com/graph/api/resources/companysubscription>,
    /// <https://learn.microsoft.com/partner-center/developer/subscription-resources>
    SubscriptionEnds {
        /// The subscription id.
        id: String,
        /// SKU part number or offer name.
        name: String,
        /// Unix seconds it ends.
        end: f64,
        /// A trial (else a paid subscription that will not renew).
        trial: bool,
    },
    /// When a credential of the partner SAM app ends (every one, not only
    /// those ending soon: the timeline shows them all).
    CredentialExpiry {
        /// The app's `appId`.
        app_id: String,
        /// The credential's `keyId`.
        key_id: String,
        /// `secret` or `certificate`.
        kind: &'static str,
        /// Unix seconds of `endDateTime`.
        end: f64,
    },
}
