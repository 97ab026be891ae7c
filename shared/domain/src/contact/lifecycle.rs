//! Lifecycle stages: where a contact stands in the funnel. A fixed, documented set.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    Subscriber,
    Lead,
    MarketingQualifiedLead,
    SalesQualifiedLead,
    Opportunity,
    Customer,
    Evangelist,
    Other,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 8] = [
        Self::Subscriber,
        Self::Lead,
        Self::MarketingQualifiedLead,
        Self::SalesQualifiedLead,
        Self::Opportunity,
        Self::Customer,
        Self::Evangelist,
        Self::Other,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Subscriber => "subscriber",
            Self::Lead => "lead",
            Self::MarketingQualifiedLead => "marketing_qualified_lead",
            Self::SalesQualifiedLead => "sales_qualified_lead",
            Self::Opportunity => "opportunity",
            Self::Customer => "customer",
            Self::Evangelist => "evangelist",
            Self::Other => "other",
        }
    }

    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let wanted = raw.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|stage| stage.as_str() == wanted)
            .ok_or_else(|| {
                let allowed: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                FieldError::new(
                    field,
                    "invalid_choice",
                    format!("must be one of {}", allowed.join(", ")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_stage_by_its_name() {
        for stage in LifecycleStage::ALL {
            assert_eq!(LifecycleStage::parse(stage.as_str(), "/s").unwrap(), stage);
            let json = serde_json::to_value(stage).unwrap();
            assert_eq!(json, stage.as_str());
        }
        assert_eq!(
            LifecycleStage::parse("prospect", "/s").unwrap_err().code,
            "invalid_choice"
        );
    }
}
