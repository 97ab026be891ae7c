//! Who makes a change.

/// Who makes a change; audit records and outbox events name it with its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, by the `sub` of their token.
    User(String),
    /// An integration acting for itself (a client-credentials token: `sub` is its `client_id`).
    ApiClient(String),
    /// An import job, by its id.
    ImportJob(String),
    /// A workflow rule, by its id.
    WorkflowRule(String),
    /// The service itself (maintenance, migrations), by the task's name.
    System(String),
}

impl Actor {
    /// The kind, as stored in `audit_log.actor_type` and outbox events' `actor.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiClient(_) => "api_client",
            Actor::ImportJob(_) => "import_job",
            Actor::WorkflowRule(_) => "workflow_rule",
            Actor::System(_) => "system",
        }
    }

    /// The id within its kind, as stored in `audit_log.actor`.
    pub fn id(&self) -> &str {
        match self {
            Actor::User(id)
            | Actor::ApiClient(id)
            | Actor::ImportJob(id)
            | Actor::WorkflowRule(id)
            | Actor::System(id) => id,
        }
    }
}
