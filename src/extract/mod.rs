//! Extractors: one module per dataset, each turning Spot API items into Arrow batches with a declared
//! schema and handing them to the lake. Extractors never see status codes, retries or rate limits
//! (that is `spot/`), and never write Parquet themselves (that is `lake/`).

mod account_costs;
mod accounts;
mod audit_events;
pub(crate) mod columns;
mod elastigroup_costs;
mod elastigroups;
mod instance_costs;
mod managed_instance_costs;
mod managed_instances;
mod ocean_clusters;
mod ocean_costs;
mod ocean_rightsizing;
mod ocean_virtual_node_groups;
mod potential_savings;

use crate::lake::{Lake, LakeError, WrittenFile};
use crate::spot::types::{Cloud, EmrScaler, Group, ManagedInstance, OceanCluster};
use crate::spot::{DayWindow, SpotClient, SpotError};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// The datasets of the lake. One snake_case name is the module, the lake folder, the
/// `raw_spot__<name>` view and the `--datasets` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    Accounts,
    Elastigroups,
    ElastigroupCosts,
    ManagedInstances,
    ManagedInstanceCosts,
    OceanClusters,
    OceanCosts,
    OceanRightsizing,
    OceanVirtualNodeGroups,
    PotentialSavings,
    AccountCosts,
    InstanceCosts,
    AuditEvents,
}

/// What a dataset's partitions are keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// The state of things on the day of the run (`day=` is the snapshot day).
    Snapshot,
    /// Facts of a day (`day=` is the usage or event day); extracted for every day of the range.
    Daily,
}

/// Whom one partition file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Organisation,
    Account,
}

impl Dataset {
    pub const ALL: [Dataset; 13] = [
        Dataset::Accounts,
        Dataset::Elastigroups,
        Dataset::ElastigroupCosts,
        Dataset::ManagedInstances,
        Dataset::ManagedInstanceCosts,
        Dataset::OceanClusters,
        Dataset::OceanCosts,
        Dataset::OceanRightsizing,
        Dataset::OceanVirtualNodeGroups,
        Dataset::PotentialSavings,
        Dataset::AccountCosts,
        Dataset::InstanceCosts,
        Dataset::AuditEvents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Accounts => "accounts",
            Dataset::Elastigroups => "elastigroups",
            Dataset::ElastigroupCosts => "elastigroup_costs",
            Dataset::ManagedInstances => "managed_instances",
            Dataset::ManagedInstanceCosts => "managed_instance_costs",
            Dataset::OceanClusters => "ocean_clusters",
            Dataset::OceanCosts => "ocean_costs",
            Dataset::OceanRightsizing => "ocean_rightsizing",
            Dataset::OceanVirtualNodeGroups => "ocean_virtual_node_groups",
            Dataset::PotentialSavings => "potential_savings",
            Dataset::AccountCosts => "account_costs",
            Dataset::InstanceCosts => "instance_costs",
            Dataset::AuditEvents => "audit_events",
        }
    }

    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name.trim())
    }

    pub fn grain(self) -> Grain {
        match self {
            Dataset::Accounts
            | Dataset::Elastigroups
            | Dataset::ManagedInstances
            | Dataset::OceanClusters
            | Dataset::OceanRightsizing
            | Dataset::OceanVirtualNodeGroups
            | Dataset::PotentialSavings => Grain::Snapshot,
            _ => Grain::Daily,
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            Dataset::Accounts | Dataset::AuditEvents => Scope::Organisation,
            _ => Scope::Account,
        }
    }

    /// What one row of the dataset is.
    pub fn grain_description(self) -> &'static str {
        match self {
            Dataset::Accounts => accounts::GRAIN,
            Dataset::Elastigroups => elastigroups::GRAIN,
            Dataset::ElastigroupCosts => elastigroup_costs::GRAIN,
            Dataset::ManagedInstances => managed_instances::GRAIN,
            Dataset::ManagedInstanceCosts => managed_instance_costs::GRAIN,
            Dataset::OceanClusters => ocean_clusters::GRAIN,
            Dataset::OceanCosts => ocean_costs::GRAIN,
            Dataset::OceanRightsizing => ocean_rightsizing::GRAIN,
            Dataset::OceanVirtualNodeGroups => ocean_virtual_node_groups::GRAIN,
            Dataset::PotentialSavings => potential_savings::GRAIN,
            Dataset::AccountCosts => account_costs::GRAIN,
            Dataset::InstanceCosts => instance_costs::GRAIN,
            Dataset::AuditEvents => audit_events::GRAIN,
        }
    }

    /// The Spot routes the dataset is read from.
    pub fn source(self) -> &'static str {
        match self {
            Dataset::Accounts => "`GET /setup/account`",
            Dataset::Elastigroups => "`GET /aws/ec2/group`, `GET /gcp/gce/group`, `GET /aws/emr/mrScaler`",
            Dataset::ElastigroupCosts => "`GET /aws/ec2/group/{id}/costs/detailed`, `GET /gcp/gce/group/{id}/costs`, `GET /aws/emr/mrScaler/{id}/costs`",
            Dataset::ManagedInstances => "`GET /aws/ec2/managedInstance`",
            Dataset::ManagedInstanceCosts => "`GET /aws/ec2/managedInstance/{id}/costs`",
            Dataset::OceanClusters => "`GET /ocean/aws/k8s/cluster`, `GET /ocean/gcp/k8s/cluster`, `GET /ocean/azure/np/cluster`",
            Dataset::OceanCosts => "`POST /ocean/{aws,gcp,azure}/k8s/cluster/{id}/aggregatedCosts` (one-day windows; `groupBy: namespace`, and `namespace.label.<key>` per configured label key)",
            Dataset::OceanRightsizing => "`POST /ocean/{id}/rightSizing/recommendations`, else the v1 `POST …/cluster/{id}/rightSizing/suggestion`",
            Dataset::OceanVirtualNodeGroups => "`GET /ocean/aws/k8s/launchSpec`, `GET /ocean/gcp/k8s/launchSpec`, `GET /ocean/azure/np/virtualNodeGroup` (each `?oceanId=`)",
            Dataset::PotentialSavings => "`GET /aws/potentialSavings`",
            Dataset::AccountCosts => "`GET /aws/costs` (daily), `GET /gcp/gce/costs`, `GET /azure/costs`",
            Dataset::InstanceCosts => "`POST /insights/instanceCosts/export` (CSV, one account and day per export)",
            Dataset::AuditEvents => "`GET /audit/events` (`responseStatus=all`)",
        }
    }

    /// Whether an account of this cloud has anything for the dataset (Managed Instances and
    /// potential savings are AWS only; Azure accounts have no Elastigroups here). Every dataset
    /// applies to an account of an unknown cloud, so its extraction fails and says why
    /// ([`SpotError::UnknownCloud`]) rather than the account vanishing from the lake unnoticed.
    pub fn applies_to(self, cloud: Cloud) -> bool {
        if cloud == Cloud::Unknown {
            return true;
        }
        match self {
            Dataset::ManagedInstances
            | Dataset::ManagedInstanceCosts
            | Dataset::PotentialSavings => cloud == Cloud::Aws,
            Dataset::Elastigroups | Dataset::ElastigroupCosts => cloud != Cloud::Azure,
            _ => true,
        }
    }

    /// The declared Arrow schema, with a description on every column.
    pub fn schema(self) -> SchemaRef {
        match self {
            Dataset::Accounts => accounts::schema(),
            Dataset::Elastigroups => elastigroups::schema(),
            Dataset::ElastigroupCosts => elastigroup_costs::schema(),
            Dataset::ManagedInstances => managed_instances::schema(),
            Dataset::ManagedInstanceCosts => managed_instance_costs::schema(),
            Dataset::OceanClusters => ocean_clusters::schema(),
            Dataset::OceanCosts => ocean_costs::schema(),
            Dataset::OceanRightsizing => ocean_rightsizing::schema(),
            Dataset::OceanVirtualNodeGroups => ocean_virtual_node_groups::schema(),
            Dataset::PotentialSavings => potential_savings::schema(),
            Dataset::AccountCosts => account_costs::schema(),
            Dataset::InstanceCosts => instance_costs::schema(),
            Dataset::AuditEvents => audit_events::schema(),
        }
    }

    /// How heavy a day of this dataset is to extract, relative to the others: the per-resource
    /// cost datasets (one request per resource and day; Ocean's responses are the largest) above
    /// the per-account ones, snapshots last. A run starts its items in this order, so the heavy
    /// ones overlap the rest instead of running last and alone.
    pub fn extraction_weight(self) -> u8 {
        match self {
            Dataset::OceanCosts => 4,
            Dataset::ElastigroupCosts | Dataset::ManagedInstanceCosts => 3,
            Dataset::InstanceCosts => 2,
            Dataset::AccountCosts | Dataset::AuditEvents => 1,
            _ => 0,
        }
    }

    /// Whether fetching a unit of this dataset also lands it (so its days must not be fetched
    /// ahead of the one being landed).
    pub fn lands_while_fetching(self) -> bool {
        self == Dataset::InstanceCosts
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Spot account as the extractors need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub id: String,
    pub name: Option<String>,
    pub cloud: Cloud,
}

/// One unit of work: a dataset for one scope (an account, or the organisation) and one day.
#[derive(Debug, Clone)]
pub struct Unit {
    pub dataset: Dataset,
    pub account: Option<AccountRef>,
    pub day: NaiveDate,
}

impl Unit {
    fn scope_name(&self) -> &str {
        self.account.as_ref().map_or("org", |a| a.id.as_str())
    }
    fn account(&self) -> Result<&AccountRef, ExtractError> {
        self.account
            .as_ref()
            .ok_or_else(|| self.error(ExtractFailure::NoAccount))
    }
    fn window(&self) -> DayWindow {
        DayWindow::new(self.day)
    }
    fn error(&self, failure: ExtractFailure) -> ExtractError {
        ExtractError {
            dataset: self.dataset,
            account: self.account.as_ref().map(|a| a.id.clone()),
            day: self.day,
            failure,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractFailure {
    #[error(transparent)]
    Spot(#[from] SpotError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("could not build the batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("this dataset is extracted per account, but no account was given")]
    NoAccount,
}

/// A failed unit, naming the dataset, the account and the day.
#[derive(Debug, thiserror::Error)]
#[error("{dataset}{} on {day}: {failure}", .account.as_deref().map(|a| format!(" for account {a}")).unwrap_or_default())]
pub struct ExtractError {
    pub dataset: Dataset,
    pub account: Option<String>,
    pub day: NaiveDate,
    #[source]
    pub failure: ExtractFailure,
}

type Cached<T> = Arc<OnceCell<Arc<Vec<T>>>>;

/// What every extractor shares in one run: the client, the lake, settings, and the resource lists
/// of each account, fetched once and reused by the list and the cost datasets.
pub struct ExtractContext {
    pub client: Arc<SpotClient>,
    pub lake: Lake,
    /// Namespace label keys to resolve for chargeback (`team`, `cost-center`, …).
    pub namespace_label_keys: Vec<String>,
    groups: Mutex<HashMap<String, Cached<Group>>>,
    emr_scalers: Mutex<HashMap<String, Cached<EmrScaler>>>,
    managed_instances: Mutex<HashMap<String, Cached<ManagedInstance>>>,
    clusters: Mutex<HashMap<String, Cached<OceanCluster>>>,
}

/// A resource of a list the extractors share, known by its id.
trait Listed {
    /// What the resource is, for messages (`Elastigroup`, …).
    const WHAT: &'static str;
    fn id(&self) -> &str;
}

impl Listed for Group {
    const WHAT: &'static str = "Elastigroup";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for EmrScaler {
    const WHAT: &'static str = "EMR scaler";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for ManagedInstance {
    const WHAT: &'static str = "Managed Instance";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for OceanCluster {
    const WHAT: &'static str = "Ocean cluster";
    fn id(&self) -> &str {
        &self.id
    }
}

/// Each id once, in the list's order: a resource listed twice is one resource, and fetching its
/// costs twice would double them. The first listing is kept; one WARN per list says how many
/// repeats were dropped.
fn first_per_id<T: Listed>(list: Vec<T>, account_id: &str) -> Vec<T> {
    let total = list.len();
    let mut seen = std::collections::HashSet::new();
    let kept: Vec<T> = list
        .into_iter()
        .filter(|item| seen.insert(item.id().to_owned()))
        .collect();
    if kept.len() < total {
        tracing::warn!(
            account = account_id,
            repeats = total - kept.len(),
            "the {} list of account {account_id:?} repeats {} id(s); each {} is counted once (its first listing)",
            T::WHAT,
            total - kept.len(),
            T::WHAT,
        );
    }
    kept
}

/// The account's list from `map`, fetched with `fetch` the first time anyone asks, each id once
/// ([`first_per_id`]). A failed fetch is not cached: the next caller tries again.
async fn cached<T, F, Fut>(
    map: &Mutex<HashMap<String, Cached<T>>>,
    account_id: &str,
    fetch: F,
) -> Result<Arc<Vec<T>>, SpotError>
where
    T: Listed,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, SpotError>>,
{
    let cell = {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(account_id.to_owned()).or_default().clone()
    };
    let list = cell
        .get_or_try_init(|| async {
            fetch()
                .await
                .map(|list| Arc::new(first_per_id(list, account_id)))
        })
        .await?;
    Ok(list.clone())
}

impl ExtractContext {
    pub fn new(
        client: Arc<SpotClient>,
        lake: Lake,
        namespace_label_keys: Vec<String>,
    ) -> ExtractContext {
        ExtractContext {
            client,
            lake,
            namespace_label_keys,
            groups: Mutex::default(),
            emr_scalers: Mutex::default(),
            managed_instances: Mutex::default(),
            clusters: Mutex::default(),
        }
    }

    async fn groups(&self, account: &AccountRef) -> Result<Arc<Vec<Group>>, SpotError> {
        cached(&self.groups, &account.id, || {
            self.client.groups(&account.id, account.cloud)
        })
        .await
    }

    async fn emr_scalers(&self, account: &AccountRef) -> Result<Arc<Vec<EmrScaler>>, SpotError> {
        cached(&self.emr_scalers, &account.id, || {
            self.client.emr_scalers(&account.id, account.cloud)
        })
        .await
    }

    async fn managed_instances(
        &self,
        account: &AccountRef,
    ) -> Result<Arc<Vec<ManagedInstance>>, SpotError> {
        cached(&self.managed_instances, &account.id, || {
            self.client.managed_instances(&account.id, account.cloud)
        })
        .await
    }

    async fn clusters(&self, account: &AccountRef) -> Result<Arc<Vec<OceanCluster>>, SpotError> {
        cached(&self.clusters, &account.id, || {
            self.client.ocean_clusters(&account.id, account.cloud)
        })
        .await
    }

    /// Writes a unit's batch as its partition file (replacing any earlier one), on a blocking
    /// thread: the write ends in fsyncs, which would otherwise hold up the runtime's requests.
    async fn land(&self, unit: &Unit, batch: RecordBatch) -> Result<WrittenFile, ExtractError> {
        let lake = self.lake.clone();
        let owned = unit.clone();
        let written = tokio::task::spawn_blocking(move || {
            let schema = owned.dataset.schema();
            lake.write_partition(
                owned.dataset.name(),
                owned.day,
                owned.scope_name(),
                &schema,
                &[batch],
            )
        })
        .await;
        match written {
            Ok(result) => result.map_err(|e| unit.error(e.into())),
            Err(stopped) => std::panic::resume_unwind(stopped.into_panic()),
        }
    }
}

/// A unit's data once fetched: a batch to land, or (the streamed instance-cost export) a file
/// already landed while it was read.
pub enum Fetched {
    Batch(RecordBatch),
    Landed(WrittenFile),
}

/// Fetches one unit from Spot. `accounts` is the organisation's account list, which the
/// `accounts` dataset lands as is.
pub async fn fetch_unit(
    context: &ExtractContext,
    unit: &Unit,
    accounts: &[crate::spot::types::Account],
) -> Result<Fetched, ExtractError> {
    let batch = match unit.dataset {
        Dataset::Accounts => accounts::batch(unit, accounts),
        Dataset::Elastigroups => elastigroups::batch(context, unit).await,
        Dataset::ElastigroupCosts => elastigroup_costs::batch(context, unit).await,
        Dataset::ManagedInstances => managed_instances::batch(context, unit).await,
        Dataset::ManagedInstanceCosts => managed_instance_costs::batch(context, unit).await,
        Dataset::OceanClusters => ocean_clusters::batch(context, unit).await,
        Dataset::OceanCosts => ocean_costs::batch(context, unit).await,
        Dataset::OceanRightsizing => ocean_rightsizing::batch(context, unit).await,
        Dataset::OceanVirtualNodeGroups => ocean_virtual_node_groups::batch(context, unit).await,
        Dataset::PotentialSavings => potential_savings::batch(context, unit).await,
        Dataset::AccountCosts => account_costs::batch(context, unit).await,
        Dataset::AuditEvents => audit_events::batch(context, unit).await,
        Dataset::InstanceCosts => {
            return instance_costs::land(context, unit)
                .await
                .map(Fetched::Landed)
        }
    }?;
    Ok(Fetched::Batch(batch))
}

/// Lands what [`fetch_unit`] fetched as the unit's partition file.
pub async fn land_unit(
    context: &ExtractContext,
    unit: &Unit,
    fetched: Fetched,
) -> Result<WrittenFile, ExtractError> {
    match fetched {
        Fetched::Batch(batch) => context.land(unit, batch).await,
        Fetched::Landed(written) => Ok(written),
    }
}

/// Extracts one unit and lands it.
pub async fn extract_unit(
    context: &ExtractContext,
    unit: &Unit,
    accounts: &[crate::spot::types::Account],
) -> Result<WrittenFile, ExtractError> {
    let fetched = fetch_unit(context, unit, accounts).await?;
    land_unit(context, unit, fetched).await
}

/// Runs `work` for every resource concurrently (the client bounds how many calls are in flight)
/// and keeps the results in the resources' order.
async fn for_each<'a, R, T, F, Fut>(resources: &'a [R], work: F) -> Result<Vec<T>, SpotError>
where
    F: Fn(&'a R) -> Fut,
    Fut: std::future::Future<Output = Result<T, SpotError>> + 'a,
{
    futures_util::future::try_join_all(resources.iter().map(work)).await
}

/// Maps a unit's Spot or Arrow failure to its `ExtractError`.
trait ForUnit<T> {
    fn for_unit(self, unit: &Unit) -> Result<T, ExtractError>;
}

impl<T, E: Into<ExtractFailure>> ForUnit<T> for Result<T, E> {
    fn for_unit(self, unit: &Unit) -> Result<T, ExtractError> {
        self.map_err(|e| unit.error(e.into()))
    }
}

/// SCHEMA.md: every dataset's partition layout, grain, source and columns, generated from the
/// declared schemas so the documentation cannot drift from the files.
pub fn schema_markdown() -> String {
    let mut out = String::from(
        "# spotcost lake schema\n\n\
         Generated from the schemas declared in `src/extract/` (`UPDATE_EXPECT=1 cargo test --release` rewrites it).\n\
         Every dataset lives in `DIR/lake/<dataset>/day=YYYY-MM-DD/part-<account id or org>.parquet`; `day` is the\n\
         data's own date (usage, event or snapshot day). Read a dataset with\n\
         `read_parquet('DIR/lake/<dataset>/**/*.parquet', hive_partitioning = true)` in DuckDB, or `pyarrow.dataset` /\n\
         `pandas.read_parquet(\"DIR/lake/<dataset>\")` in Python. Timestamps are UTC; money is USD at full precision\n\
         (round only when presenting); a column named `*_usd` is money.\n",
    );
    for dataset in Dataset::ALL {
        out.push_str(&format!(
            "\n## `{}`\n\n{}\n\nSource: {}. Partitioned per {}.\n\n| column | type | null | description |\n|---|---|---|---|\n",
            dataset.name(),
            dataset.grain_description(),
            dataset.source(),
            match dataset.scope() {
                Scope::Organisation => "day (`part-org.parquet`)",
                Scope::Account => "day and account (`part-<account id>.parquet`)",
            },
        ));
        for field in dataset.schema().fields() {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                field.name(),
                sql_type(field.data_type()),
                if field.is_nullable() { "yes" } else { "no" },
                field
                    .metadata()
                    .get("description")
                    .map(String::as_str)
                    .unwrap_or("")
            ));
        }
    }
    out
}

/// The type as DuckDB shows it, which is what a finance user sees.
fn sql_type(data_type: &arrow::datatypes::DataType) -> &'static str {
    use arrow::datatypes::DataType;
    match data_type {
        DataType::Utf8 => "varchar",
        DataType::Float64 => "double",
        DataType::Int64 => "bigint",
        DataType::Date32 => "date",
        DataType::Timestamp(_, _) => "timestamp with time zone",
        DataType::Map(_, _) => "map(varchar, varchar)",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_listed_twice_is_kept_once_in_list_order() {
        let cluster = |id: &str, name: &str| OceanCluster {
            id: id.into(),
            name: Some(name.into()),
            controller_cluster_id: None,
            region: None,
            gke: None,
            aks: None,
            created_at: None,
            updated_at: None,
        };
        let kept = first_per_id(
            vec![
                cluster("o-2", "b"),
                cluster("o-1", "a"),
                cluster("o-2", "b"),
                cluster("o-1", "renamed"),
            ],
            "act-1",
        );
        let ids: Vec<(&str, Option<&str>)> = kept
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_deref()))
            .collect();
        assert_eq!(ids, vec![("o-2", Some("b")), ("o-1", Some("a"))]);
    }

    #[test]
    fn dataset_names_round_trip_and_schemas_are_snake_case() {
        for dataset in Dataset::ALL {
            assert_eq!(Dataset::from_name(dataset.name()), Some(dataset));
            for field in dataset.schema().fields() {
                let name = field.name();
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{dataset}.{name}"
                );
            }
            assert!(
                dataset.schema().field_with_name("account_id").is_ok(),
                "{dataset} lacks account_id"
            );
            for field in dataset.schema().fields() {
                let described = field
                    .metadata()
                    .get("description")
                    .is_some_and(|d| !d.is_empty());
                assert!(described, "{dataset}.{} has no description", field.name());
                assert_ne!(
                    sql_type(field.data_type()),
                    "other",
                    "{dataset}.{}",
                    field.name()
                );
            }
        }
        assert_eq!(Dataset::from_name("nope"), None);
    }
}
