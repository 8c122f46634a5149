//! Provisioning: creates the template's tables, queues, user pools, secrets, state machines, SES identities and
//! configuration sets, and SNS topics and subscriptions in the emulator through the AWS SDK, records what their
//! `!Ref`/`!GetAtt` give, and then resolves functions, routes, authorizers and event sources into the [`Plan`]
//! the runtime parts consume.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use aws_config::SdkConfig;
use serde_json::Value;

use crate::plan::{
    CorsPlan, FunctionPlan, JwtAuthPlan, Plan, RoutePlan, SchedulePlan, SqsSourcePlan, StreamSourcePlan, ThrottlePlan,
};
use crate::template::{scalar_string, Kind, Resource, Template, ACCOUNT_ID, REGION};

/// Local settings that shape the plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// The local AWS endpoint's port: JWKS URLs point there.
    pub aws_port: u16,
    /// Where function binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// Replaces every schedule's interval, to see scheduled functions run without waiting.
    pub schedule_interval: Option<Duration>,
}

/// The user pool demo users and tokens use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPoolInfo {
    pub pool_id: String,
    pub client_id: String,
    /// The `iss` of the pool's tokens.
    pub issuer: String,
    /// `UsernameAttributes` contains `email`: users sign in with their email as username.
    pub username_is_email: bool,
}

/// What `up` created and resolved.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub plan: Plan,
    pub user_pool: Option<UserPoolInfo>,
    /// Physical names of tables (`!Ref`) and queue URLs by logical id.
    pub names: BTreeMap<String, String>,
}

/// Creates every provisioned resource of `template` in the emulator reached through `aws`, then builds the plan.
pub async fn provision(template: &mut Template, aws: &SdkConfig, opts: &Options) -> Result<Provisioned> {
    let order: Vec<Resource> = template.provisioning_order()?.into_iter().cloned().collect();
    let clients = Clients::new(aws);
    for r in &order {
        let attrs = create(template, &clients, r)
            .await
            .with_context(|| format!("provisioning {} ({})", r.logical_id, r.resource_type))?;
        tracing::debug!(resource = %r.logical_id, "provisioned");
        template.resolver.set_attributes(&r.logical_id, attrs);
    }
    let plan = build_plan(template, opts)?;
    let user_pool = user_pool_info(template)?;
    let mut names = BTreeMap::new();
    for r in template.of_kind(Kind::Table).chain(template.of_kind(Kind::Queue)) {
        if let Some(v) = template.resolver.attribute(&r.logical_id, "Ref").and_then(scalar_string) {
            names.insert(r.logical_id.clone(), v);
        }
    }
    Ok(Provisioned { plan, user_pool, names })
}

struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    cognito: aws_sdk_cognitoidentityprovider::Client,
    sfn: aws_sdk_sfn::Client,
    secrets: aws_sdk_secretsmanager::Client,
    sesv2: aws_sdk_sesv2::Client,
    ses: aws_sdk_ses::Client,
    sns: aws_sdk_sns::Client,
}

impl Clients {
    fn new(aws: &SdkConfig) -> Clients {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(aws),
            sqs: aws_sdk_sqs::Client::new(aws),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(aws),
            sfn: aws_sdk_sfn::Client::new(aws),
            secrets: aws_sdk_secretsmanager::Client::new(aws),
            sesv2: aws_sdk_sesv2::Client::new(aws),
            ses: aws_sdk_ses::Client::new(aws),
            sns: aws_sdk_sns::Client::new(aws),
        }
    }
}

type Attributes = BTreeMap<String, Value>;

async fn create(t: &Template, c: &Clients, r: &Resource) -> Result<Attributes> {
    let props = t.resolver.resolve(&r.properties, &r.logical_id)?;
    let p = Props { v: &props, at: &r.logical_id };
    match r.kind {
        Kind::Table => create_table(c, r, p).await,
        Kind::Queue => create_queue(c, r, p).await,
        Kind::UserPool => create_user_pool(c, r, p).await,
        Kind::UserPoolClient => create_user_pool_client(c, p).await,
        Kind::UserPoolGroup => create_group(c, p).await,
        Kind::StateMachine => create_state_machine(t, c, r, &props).await,
        Kind::Secret => create_secret(c, r, p).await,
        Kind::EmailIdentity => create_email_identity(c, p).await,
        Kind::ConfigurationSet => create_configuration_set(c, r, p).await,
        Kind::EventDestination => create_event_destination(t, c, p).await,
        Kind::Topic => create_topic(c, r, p).await,
        Kind::Subscription => create_subscription(c, p).await,
        other => bail!("{other:?} resources are not provisioned"),
    }
}

/// Read access to resolved properties, accepting numbers and booleans written as strings.
#[derive(Clone, Copy)]
struct Props<'a> {
    v: &'a Value,
    at: &'a str,
}

impl<'a> Props<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.v.get(name).filter(|v| !v.is_null())
    }

    fn str(&self, name: &str) -> Result<Option<String>> {
        self.get(name)
            .map(|v| scalar_string(v).ok_or_else(|| anyhow!("resource {}: {name} must be a string", self.at)))
            .transpose()
    }

    fn required_str(&self, name: &str) -> Result<String> {
        self.str(name)?.ok_or_else(|| anyhow!("resource {}: {name} is required", self.at))
    }

    fn i64(&self, name: &str) -> Result<Option<i64>> {
        self.str(name)?
            .map(|s| s.parse::<i64>().map_err(|_| anyhow!("resource {}: {name} must be an integer, got {s}", self.at)))
            .transpose()
    }

    fn i32(&self, name: &str) -> Result<Option<i32>> {
        self.i64(name)?
            .map(|n| i32::try_from(n).map_err(|_| anyhow!("resource {}: {name} is out of range", self.at)))
            .transpose()
    }

    fn u32(&self, name: &str) -> Result<Option<u32>> {
        self.i64(name)?
            .map(|n| u32::try_from(n).map_err(|_| anyhow!("resource {}: {name} must not be negative", self.at)))
            .transpose()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => bail!("resource {}: {name} must be true or false, got {v}", self.at),
        }
    }

    fn strs(&self, name: &str) -> Result<Vec<String>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| scalar_string(i).ok_or_else(|| anyhow!("resource {}: {name} must list strings", self.at)))
                .collect(),
            Some(v) => {
                Ok(vec![scalar_string(v)
                    .ok_or_else(|| anyhow!("resource {}: {name} must be a list of strings", self.at))?])
            }
        }
    }

    fn obj(&self, name: &str) -> Option<Props<'a>> {
        self.get(name).filter(|v| v.is_object()).map(|v| Props { v, at: self.at })
    }

    fn list(&self, name: &str) -> Vec<Props<'a>> {
        match self.get(name) {
            Some(Value::Array(items)) => items.iter().map(|v| Props { v, at: self.at }).collect(),
            _ => Vec::new(),
        }
    }

    fn reject(&self, names: &[&str], why: &str) -> Result<()> {
        for name in names {
            if self.get(name).is_some() {
                bail!("unsupported: {name} in resource {} ({why})", self.at);
            }
        }
        Ok(())
    }
}

async fn create_table(c: &Clients, r: &Resource, p: Props<'_>) -> Result<Attributes> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex,
        Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, StreamSpecification, StreamViewType,
        TimeToLiveSpecification,
    };
    let name = p.str("TableName")?.unwrap_or_else(|| r.physical_name());
    let keys = |list: Vec<Props>| -> Result<Vec<KeySchemaElement>> {
        list.iter()
            .map(|k| {
                Ok(KeySchemaElement::builder()
                    .attribute_name(k.required_str("AttributeName")?)
                    .key_type(KeyType::from(k.required_str("KeyType")?.as_str()))
                    .build()?)
            })
            .collect()
    };
    let throughput = |t: Option<Props>| -> Result<Option<ProvisionedThroughput>> {
        t.map(|t| {
            Ok(ProvisionedThroughput::builder()
                .read_capacity_units(t.i64("ReadCapacityUnits")?.unwrap_or(1))
                .write_capacity_units(t.i64("WriteCapacityUnits")?.unwrap_or(1))
                .build()?)
        })
        .transpose()
    };
    let projection = |p: Option<Props>| -> Result<Projection> {
        let Some(p) = p else {
            return Ok(Projection::builder().projection_type(ProjectionType::All).build());
        };
        let non_key = p.strs("NonKeyAttributes")?;
        Ok(Projection::builder()
            .set_projection_type(p.str("ProjectionType")?.map(|t| ProjectionType::from(t.as_str())))
            .set_non_key_attributes((!non_key.is_empty()).then_some(non_key))
            .build())
    };

    let mut defs = Vec::new();
    for d in p.list("AttributeDefinitions") {
        defs.push(
            AttributeDefinition::builder()
                .attribute_name(d.required_str("AttributeName")?)
                .attribute_type(ScalarAttributeType::from(d.required_str("AttributeType")?.as_str()))
                .build()?,
        );
    }
    let mut gsis = Vec::new();
    for g in p.list("GlobalSecondaryIndexes") {
        gsis.push(
            GlobalSecondaryIndex::builder()
                .index_name(g.required_str("IndexName")?)
                .set_key_schema(Some(keys(g.list("KeySchema"))?))
                .projection(projection(g.obj("Projection"))?)
                .set_provisioned_throughput(throughput(g.obj("ProvisionedThroughput"))?)
                .build()?,
        );
    }
    let mut lsis = Vec::new();
    for l in p.list("LocalSecondaryIndexes") {
        lsis.push(
            LocalSecondaryIndex::builder()
                .index_name(l.required_str("IndexName")?)
                .set_key_schema(Some(keys(l.list("KeySchema"))?))
                .projection(projection(l.obj("Projection"))?)
                .build()?,
        );
    }
    let billing = p.str("BillingMode")?.unwrap_or_else(|| "PROVISIONED".to_string());
    let mut req = c
        .dynamodb
        .create_table()
        .table_name(&name)
        .set_attribute_definitions(Some(defs))
        .set_key_schema(Some(keys(p.list("KeySchema"))?))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .set_local_secondary_indexes((!lsis.is_empty()).then_some(lsis))
        .billing_mode(BillingMode::from(billing.as_str()));
    if billing == "PROVISIONED" {
        let t = throughput(p.obj("ProvisionedThroughput"))?
            .unwrap_or(ProvisionedThroughput::builder().read_capacity_units(5).write_capacity_units(5).build()?);
        req = req.provisioned_throughput(t);
    }
    if let Some(s) = p.obj("StreamSpecification") {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(s.required_str("StreamViewType")?.as_str()))
                .build()?,
        );
    }
    let out = req.send().await.map_err(aws_error)?;
    let desc = out.table_description.ok_or_else(|| anyhow!("CreateTable returned no description"))?;
    if let Some(ttl) = p.obj("TimeToLiveSpecification") {
        if ttl.bool("Enabled")?.unwrap_or(false) {
            c.dynamodb
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(ttl.required_str("AttributeName")?)
                        .build()?,
                )
                .send()
                .await
                .map_err(aws_error)?;
        }
    }
    let mut a = Attributes::new();
    a.insert("Ref".into(), Value::String(name.clone()));
    a.insert(
        "Arn".into(),
        Value::String(desc.table_arn.unwrap_or_else(|| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"))),
    );
    if let Some(stream) = desc.latest_stream_arn {
        a.insert("StreamArn".into(), Value::String(stream));
    }
    Ok(a)
}

async fn create_queue(c: &Clients, r: &Resource, p: Props<'_>) -> Result<Attributes> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let fifo = p.bool("FifoQueue")?.unwrap_or(false);
    let name = match p.str("QueueName")? {
        Some(n) => n,
        None if fifo => format!("{}.fifo", r.physical_name()),
        None => r.physical_name(),
    };
    let mut attrs: HashMap<QueueAttributeName, String> = HashMap::new();
    for key in [
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "DeduplicationScope",
        "FifoThroughputLimit",
    ] {
        if let Some(v) = p.str(key)? {
            attrs.insert(QueueAttributeName::from(key), v);
        }
    }
    for key in ["FifoQueue", "ContentBasedDeduplication"] {
        if let Some(v) = p.bool(key)? {
            attrs.insert(QueueAttributeName::from(key), v.to_string());
        }
    }
    for key in ["RedrivePolicy", "RedriveAllowPolicy"] {
        match p.get(key) {
            None => {}
            Some(Value::String(s)) => {
                attrs.insert(QueueAttributeName::from(key), s.clone());
            }
            Some(v) => {
                attrs.insert(QueueAttributeName::from(key), v.to_string());
            }
        }
    }
    let out = c.sqs.create_queue().queue_name(&name).set_attributes(Some(attrs)).send().await.map_err(aws_error)?;
    let url = out.queue_url.ok_or_else(|| anyhow!("CreateQueue returned no URL"))?;
    let arn = c
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_error)?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_else(|| format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"));
    let s = Value::String;
    Ok(Attributes::from([
        ("Ref".into(), s(url.clone())),
        ("QueueUrl".into(), s(url)),
        ("Arn".into(), s(arn)),
        ("QueueName".into(), s(name)),
    ]))
}

/// A secret with its `SecretString`, or a value generated as `GenerateSecretString` asks (the emulator's
/// `GetRandomPassword`; with `SecretStringTemplate` and `GenerateStringKey` the value is that JSON object
/// with the generated string under the key). `!Ref` and `Id` give the ARN, as on AWS.
async fn create_secret(c: &Clients, r: &Resource, p: Props<'_>) -> Result<Attributes> {
    p.reject(&["ReplicaRegions"], "secrets are not replicated locally")?;
    let name = p.str("Name")?.unwrap_or_else(|| r.physical_name());
    let value = match (p.str("SecretString")?, p.obj("GenerateSecretString")) {
        (Some(value), None) => value,
        (None, Some(g)) => generated_secret(c, g).await?,
        (Some(_), Some(_)) => bail!("resource {}: SecretString and GenerateSecretString are exclusive", r.logical_id),
        (None, None) => bail!(
            "unsupported: secret {} without SecretString or GenerateSecretString (it would have no value)",
            r.logical_id
        ),
    };
    let out = c
        .secrets
        .create_secret()
        .name(&name)
        .set_description(p.str("Description")?)
        .secret_string(value)
        .send()
        .await
        .map_err(aws_error)?;
    let arn = out.arn.ok_or_else(|| anyhow!("CreateSecret returned no ARN"))?;
    let s = Value::String;
    Ok(Attributes::from([("Ref".into(), s(arn.clone())), ("Id".into(), s(arn))]))
}

async fn generated_secret(c: &Clients, g: Props<'_>) -> Result<String> {
    let out = c
        .secrets
        .get_random_password()
        .set_password_length(g.i64("PasswordLength")?)
        .set_exclude_characters(g.str("ExcludeCharacters")?)
        .set_exclude_lowercase(g.bool("ExcludeLowercase")?)
        .set_exclude_numbers(g.bool("ExcludeNumbers")?)
        .set_exclude_punctuation(g.bool("ExcludePunctuation")?)
        .set_exclude_uppercase(g.bool("ExcludeUppercase")?)
        .set_include_space(g.bool("IncludeSpace")?)
        .set_require_each_included_type(g.bool("RequireEachIncludedType")?)
        .send()
        .await
        .map_err(aws_error)?;
    let password = out.random_password.ok_or_else(|| anyhow!("GetRandomPassword returned no password"))?;
    match (g.str("SecretStringTemplate")?, g.str("GenerateStringKey")?) {
        (None, None) => Ok(password),
        (Some(template), Some(key)) => {
            let mut object: serde_json::Map<String, Value> = serde_json::from_str(&template)
                .map_err(|e| anyhow!("resource {}: SecretStringTemplate is not a JSON object: {e}", g.at))?;
            object.insert(key, Value::String(password));
            Ok(Value::Object(object).to_string())
        }
        _ => bail!("resource {}: SecretStringTemplate and GenerateStringKey go together", g.at),
    }
}

async fn create_user_pool(c: &Clients, r: &Resource, p: Props<'_>) -> Result<Attributes> {
    use aws_sdk_cognitoidentityprovider::types::{
        AdminCreateUserConfigType, AliasAttributeType, AttributeDataType, NumberAttributeConstraintsType,
        PasswordPolicyType, SchemaAttributeType, StringAttributeConstraintsType, UserPoolMfaType, UserPoolPolicyType,
        UsernameAttributeType, UsernameConfigurationType, VerifiedAttributeType,
    };
    p.reject(&["LambdaConfig"], "Cognito triggers do not run locally")?;
    let name = p.str("UserPoolName")?.unwrap_or_else(|| r.physical_name());
    let mut req = c.cognito.create_user_pool().pool_name(name);
    if let Some(pw) = p.obj("Policies").and_then(|pol| pol.obj("PasswordPolicy")) {
        req = req.policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .set_minimum_length(pw.i32("MinimumLength")?)
                        .set_require_lowercase(pw.bool("RequireLowercase")?)
                        .set_require_uppercase(pw.bool("RequireUppercase")?)
                        .set_require_numbers(pw.bool("RequireNumbers")?)
                        .set_require_symbols(pw.bool("RequireSymbols")?)
                        .set_temporary_password_validity_days(pw.i32("TemporaryPasswordValidityDays")?)
                        .build(),
                )
                .build(),
        );
    }
    let username_attrs = p.strs("UsernameAttributes")?;
    if !username_attrs.is_empty() {
        req = req.set_username_attributes(Some(
            username_attrs.iter().map(|a| UsernameAttributeType::from(a.as_str())).collect(),
        ));
    }
    let alias_attrs = p.strs("AliasAttributes")?;
    if !alias_attrs.is_empty() {
        req =
            req.set_alias_attributes(Some(alias_attrs.iter().map(|a| AliasAttributeType::from(a.as_str())).collect()));
    }
    let verified = p.strs("AutoVerifiedAttributes")?;
    if !verified.is_empty() {
        req = req.set_auto_verified_attributes(Some(
            verified.iter().map(|a| VerifiedAttributeType::from(a.as_str())).collect(),
        ));
    }
    let mut schema = Vec::new();
    for s in p.list("Schema") {
        let strings = s.obj("StringAttributeConstraints");
        let numbers = s.obj("NumberAttributeConstraints");
        schema.push(
            SchemaAttributeType::builder()
                .set_name(s.str("Name")?)
                .set_attribute_data_type(s.str("AttributeDataType")?.map(|t| AttributeDataType::from(t.as_str())))
                .set_required(s.bool("Required")?)
                .set_mutable(s.bool("Mutable")?)
                .set_developer_only_attribute(s.bool("DeveloperOnlyAttribute")?)
                .set_string_attribute_constraints(
                    strings
                        .map(|c| -> Result<_> {
                            Ok(StringAttributeConstraintsType::builder()
                                .set_min_length(c.str("MinLength")?)
                                .set_max_length(c.str("MaxLength")?)
                                .build())
                        })
                        .transpose()?,
                )
                .set_number_attribute_constraints(
                    numbers
                        .map(|c| -> Result<_> {
                            Ok(NumberAttributeConstraintsType::builder()
                                .set_min_value(c.str("MinValue")?)
                                .set_max_value(c.str("MaxValue")?)
                                .build())
                        })
                        .transpose()?,
                )
                .build(),
        );
    }
    if !schema.is_empty() {
        req = req.set_schema(Some(schema));
    }
    if let Some(mfa) = p.str("MfaConfiguration")? {
        req = req.mfa_configuration(UserPoolMfaType::from(mfa.as_str()));
    }
    if let Some(admin) = p.obj("AdminCreateUserConfig") {
        req = req.admin_create_user_config(
            AdminCreateUserConfigType::builder()
                .set_allow_admin_create_user_only(admin.bool("AllowAdminCreateUserOnly")?)
                .build(),
        );
    }
    if let Some(cfg) = p.obj("UsernameConfiguration") {
        req = req.username_configuration(
            UsernameConfigurationType::builder().set_case_sensitive(cfg.bool("CaseSensitive")?).build()?,
        );
    }
    let out = req.send().await.map_err(aws_error)?;
    let pool = out.user_pool.ok_or_else(|| anyhow!("CreateUserPool returned no pool"))?;
    let id = pool.id.ok_or_else(|| anyhow!("CreateUserPool returned no id"))?;
    let arn = pool.arn.unwrap_or_else(|| format!("arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{id}"));
    let s = Value::String;
    Ok(Attributes::from([
        ("Ref".into(), s(id.clone())),
        ("UserPoolId".into(), s(id.clone())),
        ("Arn".into(), s(arn)),
        ("ProviderName".into(), s(format!("cognito-idp.{REGION}.amazonaws.com/{id}"))),
        ("ProviderURL".into(), s(cognito_issuer(&id))),
    ]))
}

/// The `iss` of tokens from pool `pool_id` (AWS-style, as moto signs it).
pub fn cognito_issuer(pool_id: &str) -> String {
    format!("https://cognito-idp.{REGION}.amazonaws.com/{pool_id}")
}

async fn create_user_pool_client(c: &Clients, p: Props<'_>) -> Result<Attributes> {
    use aws_sdk_cognitoidentityprovider::types::{
        ExplicitAuthFlowsType, OAuthFlowType, PreventUserExistenceErrorTypes, TimeUnitsType, TokenValidityUnitsType,
    };
    let pool_id = p.required_str("UserPoolId")?;
    let name = p.str("ClientName")?.unwrap_or_else(|| format!("{}-client", p.at));
    let flows = p.strs("ExplicitAuthFlows")?;
    let read = p.strs("ReadAttributes")?;
    let write = p.strs("WriteAttributes")?;
    let oauth_flows = p.strs("AllowedOAuthFlows")?;
    let scopes = p.strs("AllowedOAuthScopes")?;
    let callbacks = p.strs("CallbackURLs")?;
    let logouts = p.strs("LogoutURLs")?;
    let idps = p.strs("SupportedIdentityProviders")?;
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let mut req = c
        .cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name(name)
        .set_generate_secret(p.bool("GenerateSecret")?)
        .set_explicit_auth_flows(
            non_empty(flows).map(|f| f.iter().map(|x| ExplicitAuthFlowsType::from(x.as_str())).collect()),
        )
        .set_id_token_validity(p.i32("IdTokenValidity")?)
        .set_access_token_validity(p.i32("AccessTokenValidity")?)
        .set_refresh_token_validity(p.i32("RefreshTokenValidity")?)
        .set_read_attributes(non_empty(read))
        .set_write_attributes(non_empty(write))
        .set_allowed_o_auth_flows(
            non_empty(oauth_flows).map(|f| f.iter().map(|x| OAuthFlowType::from(x.as_str())).collect()),
        )
        .set_allowed_o_auth_scopes(non_empty(scopes))
        .set_allowed_o_auth_flows_user_pool_client(p.bool("AllowedOAuthFlowsUserPoolClient")?)
        .set_callback_urls(non_empty(callbacks))
        .set_logout_urls(non_empty(logouts))
        .set_supported_identity_providers(non_empty(idps))
        .set_prevent_user_existence_errors(
            p.str("PreventUserExistenceErrors")?.map(|v| PreventUserExistenceErrorTypes::from(v.as_str())),
        );
    if let Some(units) = p.obj("TokenValidityUnits") {
        let unit = |name: &str| -> Result<Option<TimeUnitsType>> {
            Ok(units.str(name)?.map(|u| TimeUnitsType::from(u.as_str())))
        };
        req = req.token_validity_units(
            TokenValidityUnitsType::builder()
                .set_id_token(unit("IdToken")?)
                .set_access_token(unit("AccessToken")?)
                .set_refresh_token(unit("RefreshToken")?)
                .build(),
        );
    }
    let out = req.send().await.map_err(aws_error)?;
    let client = out.user_pool_client.ok_or_else(|| anyhow!("CreateUserPoolClient returned no client"))?;
    let id = client.client_id.ok_or_else(|| anyhow!("CreateUserPoolClient returned no id"))?;
    let mut a = Attributes::from([
        ("Ref".into(), Value::String(id.clone())),
        ("ClientId".into(), Value::String(id)),
        ("UserPoolId".into(), Value::String(pool_id)),
    ]);
    if let Some(secret) = client.client_secret {
        a.insert("ClientSecret".into(), Value::String(secret));
    }
    Ok(a)
}

async fn create_group(c: &Clients, p: Props<'_>) -> Result<Attributes> {
    let pool_id = p.required_str("UserPoolId")?;
    let name = p.str("GroupName")?.unwrap_or_else(|| p.at.to_string());
    c.cognito
        .create_group()
        .user_pool_id(pool_id)
        .group_name(&name)
        .set_description(p.str("Description")?)
        .set_precedence(p.i32("Precedence")?)
        .send()
        .await
        .map_err(aws_error)?;
    Ok(Attributes::from([("Ref".into(), Value::String(name))]))
}

async fn create_state_machine(t: &Template, c: &Clients, r: &Resource, props: &Value) -> Result<Attributes> {
    use aws_sdk_sfn::types::StateMachineType;
    let p = Props { v: props, at: &r.logical_id };
    let serverless = r.resource_type == "AWS::Serverless::StateMachine";
    if serverless && p.get("Events").and_then(Value::as_object).is_some_and(|e| !e.is_empty()) {
        bail!("unsupported: Events of AWS::Serverless::StateMachine in resource {}", r.logical_id);
    }
    p.reject(&["DefinitionS3Location"], "definitions are read from the repository")?;
    let name = p.str(if serverless { "Name" } else { "StateMachineName" })?.unwrap_or_else(|| r.physical_name());
    let definition = if let Some(inline) = p.get("Definition") {
        serde_json::to_string_pretty(inline)?
    } else if let Some(s) = p.str("DefinitionString")?.filter(|_| !serverless) {
        s
    } else if let Some(uri) = p.get("DefinitionUri").filter(|_| serverless) {
        let rel = uri.as_str().ok_or_else(|| {
            anyhow!("unsupported: DefinitionUri as an S3 location in resource {} (use a repository path)", r.logical_id)
        })?;
        let path = t.dir.join(rel);
        std::fs::read_to_string(&path).with_context(|| format!("reading DefinitionUri {}", path.display()))?
    } else {
        bail!("resource {}: a state machine needs Definition, DefinitionUri or DefinitionString", r.logical_id);
    };
    let mut substitutions = BTreeMap::new();
    if let Some(Value::Object(subs)) = p.get("DefinitionSubstitutions") {
        for (k, v) in subs {
            let s = scalar_string(v)
                .ok_or_else(|| anyhow!("resource {}: DefinitionSubstitutions.{k} must be a string", r.logical_id))?;
            substitutions.insert(k.clone(), s);
        }
    }
    let definition = substitute(&definition, &substitutions, &r.logical_id)?;
    serde_json::from_str::<Value>(&definition)
        .with_context(|| format!("resource {}: the definition is not valid JSON after substitution", r.logical_id))?;
    let kind = p.str(if serverless { "Type" } else { "StateMachineType" })?.unwrap_or_else(|| "STANDARD".to_string());
    let out = c
        .sfn
        .create_state_machine()
        .name(&name)
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/{}-role", r.physical_name()))
        .r#type(StateMachineType::from(kind.as_str()))
        .send()
        .await
        .map_err(aws_error)?;
    let arn = out.state_machine_arn;
    Ok(Attributes::from([
        ("Ref".into(), Value::String(arn.clone())),
        ("Arn".into(), Value::String(arn)),
        ("Name".into(), Value::String(name)),
    ]))
}

/// An SES identity (a domain or an address), with the configuration set its mail uses by default. The
/// emulator treats every identity as verified: mail from the address, or from any address of the domain, is
/// accepted; mail from anywhere else is refused (`MessageRejected`), as in the SES sandbox.
async fn create_email_identity(c: &Clients, p: Props<'_>) -> Result<Attributes> {
    let identity = p.required_str("EmailIdentity")?;
    let configuration_set =
        p.obj("ConfigurationSetAttributes").map(|a| a.str("ConfigurationSetName")).transpose()?.flatten();
    c.sesv2
        .create_email_identity()
        .email_identity(&identity)
        .set_configuration_set_name(configuration_set)
        .send()
        .await
        .map_err(aws_error)?;
    Ok(Attributes::from([("Ref".into(), Value::String(identity))]))
}

/// An SES configuration set. The emulator records its options but applies none of them.
async fn create_configuration_set(c: &Clients, r: &Resource, p: Props<'_>) -> Result<Attributes> {
    use aws_sdk_sesv2::types::{ReputationOptions, SendingOptions, SuppressionListReason, SuppressionOptions};
    let name = p.str("Name")?.unwrap_or_else(|| r.physical_name());
    let reputation = p
        .obj("ReputationOptions")
        .map(|o| -> Result<_> {
            Ok(ReputationOptions::builder().set_reputation_metrics_enabled(o.bool("ReputationMetricsEnabled")?).build())
        })
        .transpose()?;
    let sending = p
        .obj("SendingOptions")
        .map(|o| -> Result<_> { Ok(SendingOptions::builder().set_sending_enabled(o.bool("SendingEnabled")?).build()) })
        .transpose()?;
    let suppression = p
        .obj("SuppressionOptions")
        .map(|o| -> Result<_> {
            let reasons = o.strs("SuppressedReasons")?;
            Ok(SuppressionOptions::builder()
                .set_suppressed_reasons(Some(reasons.iter().map(|x| SuppressionListReason::from(x.as_str())).collect()))
                .build())
        })
        .transpose()?;
    c.sesv2
        .create_configuration_set()
        .configuration_set_name(&name)
        .set_reputation_options(reputation)
        .set_sending_options(sending)
        .set_suppression_options(suppression)
        .send()
        .await
        .map_err(aws_error)?;
    Ok(Attributes::from([("Ref".into(), Value::String(name.clone())), ("Name".into(), Value::String(name))]))
}

/// Emulation glue, local only: the stand-in for a configuration set's event publishing to SNS.
///
/// The emulator records event destinations but never publishes to them. The only feedback it produces is SES
/// v1's per-identity notification topics (`SetIdentityNotificationTopic`): mail from a domain identity with a
/// topic for a notification type, sent to the mailbox simulator (`bounce@simulator.amazonses.com`,
/// `complaint@simulator.amazonses.com`, `success@simulator.amazonses.com`), publishes the emulator's fixed
/// sample notification of that type to the topic. So for an enabled SNS destination, every email identity of
/// the template whose `ConfigurationSetAttributes.ConfigurationSetName` is this destination's configuration set
/// gets the destination's topic for each matching event type the emulator can produce (bounce -> Bounce,
/// complaint -> Complaint, delivery -> Delivery); other event types (send, reject, open, click, ...) are never
/// produced locally. On AWS nothing of this is set: the deployed stack publishes through the destination
/// itself. Locally every mail of such an identity gets feedback, with or without the configuration set.
/// CloudWatch destinations are deploy-only metrics and are accepted without effect.
async fn create_event_destination(t: &Template, c: &Clients, p: Props<'_>) -> Result<Attributes> {
    use aws_sdk_ses::types::NotificationType;
    let set = p.required_str("ConfigurationSetName")?;
    let dest = p.obj("EventDestination").ok_or_else(|| anyhow!("resource {}: EventDestination is required", p.at))?;
    dest.reject(
        &["KinesisFirehoseDestination", "EventBridgeDestination"],
        "only SNS event destinations are emulated locally",
    )?;
    let name = dest.str("Name")?.unwrap_or_else(|| p.at.to_string());
    let attrs = Attributes::from([("Ref".into(), Value::String(format!("{set}|{name}")))]);
    let Some(topic) = dest.obj("SnsDestination").map(|s| s.required_str("TopicARN")).transpose()? else {
        return Ok(attrs);
    };
    if !dest.bool("Enabled")?.unwrap_or(false) {
        return Ok(attrs);
    }
    let mut types = Vec::new();
    for event in dest.strs("MatchingEventTypes")? {
        match event.to_ascii_lowercase().as_str() {
            "bounce" => types.push(NotificationType::Bounce),
            "complaint" => types.push(NotificationType::Complaint),
            "delivery" => types.push(NotificationType::Delivery),
            _ => tracing::debug!(resource = p.at, event = %event, "event type not produced by the emulator"),
        }
    }
    for identity in t.of_kind(Kind::EmailIdentity) {
        let id = &identity.logical_id;
        let uses = match identity.property("ConfigurationSetAttributes") {
            Some(a) => t.resolver.resolve(a, id)?.get("ConfigurationSetName").and_then(scalar_string),
            None => None,
        };
        if uses.as_deref() != Some(set.as_str()) {
            continue;
        }
        let address = t
            .resolver
            .attribute(id, "Ref")
            .and_then(scalar_string)
            .ok_or_else(|| anyhow!("identity {id} is not provisioned yet"))?;
        for kind in &types {
            c.ses
                .set_identity_notification_topic()
                .identity(&address)
                .notification_type(kind.clone())
                .sns_topic(&topic)
                .send()
                .await
                .map_err(aws_error)?;
        }
    }
    Ok(attrs)
}

/// An SNS topic, with the `sqs` subscriptions of its `Subscription` list.
async fn create_topic(c: &Clients, r: &Resource, p: Props<'_>) -> Result<Attributes> {
    let fifo = p.bool("FifoTopic")?.unwrap_or(false);
    let name = match p.str("TopicName")? {
        Some(n) => n,
        None if fifo => format!("{}.fifo", r.physical_name()),
        None => r.physical_name(),
    };
    let mut attrs: HashMap<String, String> = HashMap::new();
    if let Some(v) = p.str("DisplayName")? {
        attrs.insert("DisplayName".into(), v);
    }
    for key in ["FifoTopic", "ContentBasedDeduplication"] {
        if let Some(v) = p.bool(key)? {
            attrs.insert(key.into(), v.to_string());
        }
    }
    let out = c.sns.create_topic().name(&name).set_attributes(Some(attrs)).send().await.map_err(aws_error)?;
    let arn = out.topic_arn.ok_or_else(|| anyhow!("CreateTopic returned no ARN"))?;
    for s in p.list("Subscription") {
        let protocol = s.required_str("Protocol")?;
        if protocol == "sqs" {
            let endpoint = s.required_str("Endpoint")?;
            c.sns.subscribe().topic_arn(&arn).protocol(protocol).endpoint(endpoint).send().await.map_err(aws_error)?;
        } else {
            tracing::debug!(resource = p.at, protocol = %protocol, "subscription not created (no local receiver)");
        }
    }
    let s = Value::String;
    Ok(Attributes::from([("Ref".into(), s(arn.clone())), ("TopicArn".into(), s(arn)), ("TopicName".into(), s(name))]))
}

/// An SNS subscription. Only `sqs` subscriptions are created: other protocols (email, http/s, sms, lambda ...)
/// have no local receiver, as alarm topics' email subscriptions. `RawMessageDelivery` is passed only when true:
/// the emulator takes any value it is given, "false" included, as true.
async fn create_subscription(c: &Clients, p: Props<'_>) -> Result<Attributes> {
    let topic = p.required_str("TopicArn")?;
    let protocol = p.required_str("Protocol")?;
    if protocol != "sqs" {
        tracing::debug!(resource = p.at, protocol = %protocol, "subscription not created (no local receiver)");
        return Ok(Attributes::from([("Ref".into(), Value::String(format!("{topic}:{}", p.at)))]));
    }
    let endpoint = p.required_str("Endpoint")?;
    let mut attrs: HashMap<String, String> = HashMap::new();
    if p.bool("RawMessageDelivery")? == Some(true) {
        attrs.insert("RawMessageDelivery".into(), "true".into());
    }
    if let Some(scope) = p.str("FilterPolicyScope")? {
        attrs.insert("FilterPolicyScope".into(), scope);
    }
    match p.get("FilterPolicy") {
        None => {}
        Some(Value::String(s)) => {
            attrs.insert("FilterPolicy".into(), s.clone());
        }
        Some(v) => {
            attrs.insert("FilterPolicy".into(), v.to_string());
        }
    }
    let out = c
        .sns
        .subscribe()
        .topic_arn(&topic)
        .protocol(&protocol)
        .endpoint(&endpoint)
        .set_attributes((!attrs.is_empty()).then_some(attrs))
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(aws_error)?;
    let arn = out.subscription_arn.ok_or_else(|| anyhow!("Subscribe returned no subscription ARN"))?;
    Ok(Attributes::from([("Ref".into(), Value::String(arn))]))
}

/// Replaces `${Key}` with the DefinitionSubstitutions; a placeholder left over is an error.
fn substitute(definition: &str, subs: &BTreeMap<String, String>, at: &str) -> Result<String> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').filter(|e| {
            after[..*e].chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == ':')
        });
        match end {
            Some(end) => {
                let key = &after[..end];
                let v = subs
                    .get(key)
                    .ok_or_else(|| anyhow!("unresolved: ${{{key}}} in the definition of state machine {at}"))?;
                out.push_str(v);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn aws_error<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_dynamodb::error::SdkError<E>) -> anyhow::Error {
    let e = aws_sdk_dynamodb::error::DisplayErrorContext(&e);
    anyhow!("{e}")
}

/// Functions, routes, CORS and event sources from the template, with every reference resolved.
pub fn build_plan(t: &Template, opts: &Options) -> Result<Plan> {
    let apis: Vec<&Resource> = t.of_kind(Kind::HttpApi).collect();
    if apis.len() > 1 {
        let ids: Vec<&str> = apis.iter().map(|a| a.logical_id.as_str()).collect();
        bail!("unsupported: more than one AWS::Serverless::HttpApi ({}) on one local port", ids.join(", "));
    }
    let mut api_props: BTreeMap<Option<String>, Value> = BTreeMap::new();
    for api in &apis {
        api_props.insert(Some(api.logical_id.clone()), t.resolver.resolve(&api.properties, &api.logical_id)?);
    }
    api_props.insert(None, t.resolver.resolve(&t.http_api_globals, "Globals.HttpApi")?);

    let queues_by_arn: BTreeMap<String, String> = t
        .of_kind(Kind::Queue)
        .filter_map(|q| {
            let arn = t.resolver.attribute(&q.logical_id, "Arn").and_then(scalar_string)?;
            let url = t.resolver.attribute(&q.logical_id, "Ref").and_then(scalar_string)?;
            Some((arn, url))
        })
        .collect();
    let tables_by_stream: BTreeMap<String, String> = t
        .of_kind(Kind::Table)
        .filter_map(|tb| {
            let stream = t.resolver.attribute(&tb.logical_id, "StreamArn").and_then(scalar_string)?;
            let name = t.resolver.attribute(&tb.logical_id, "Ref").and_then(scalar_string)?;
            Some((stream, name))
        })
        .collect();

    let mut plan = Plan::default();
    let cors_source = apis.first().map(|a| Some(a.logical_id.clone())).unwrap_or(None);
    if let Some(cors) = api_props.get(&cors_source).and_then(|p| p.get("CorsConfiguration")) {
        plan.cors = cors_plan(cors, cors_source.as_deref().unwrap_or("Globals.HttpApi"))?;
    }

    for f in t.of_kind(Kind::Function) {
        let id = &f.logical_id;
        let props = t.resolver.resolve(&f.properties, id)?;
        let p = Props { v: &props, at: id };
        if let Some(runtime) = p.str("Runtime")? {
            if !runtime.starts_with("provided") {
                bail!("unsupported: Runtime {runtime} in resource {id} (functions run as cargo binaries)");
            }
        }
        let binary =
            f.metadata.get("BuildProperties").and_then(|b| b.get("Binary")).and_then(Value::as_str).ok_or_else(
                || anyhow!("resource {id}: Metadata.BuildProperties.Binary (the cargo binary) is required"),
            )?;
        let mut environment = BTreeMap::new();
        if let Some(Value::Object(vars)) = p.obj("Environment").and_then(|e| e.get("Variables")) {
            for (k, v) in vars {
                let s = scalar_string(v)
                    .ok_or_else(|| anyhow!("resource {id}: environment variable {k} must be a string, got {v}"))?;
                environment.insert(k.clone(), s);
            }
        }
        plan.functions.insert(
            id.clone(),
            FunctionPlan {
                logical_id: id.clone(),
                binary: opts.bin_dir.join(binary),
                environment,
                timeout: Duration::from_secs(p.i64("Timeout")?.unwrap_or(3).max(1) as u64),
                memory_mb: p.u32("MemorySize")?.unwrap_or(128),
                reserved_concurrency: p.u32("ReservedConcurrentExecutions")?,
            },
        );
        let Some(Value::Object(events)) = p.get("Events") else {
            continue;
        };
        for (event_name, event) in events {
            let kind = event.get("Type").and_then(Value::as_str).unwrap_or("");
            let empty = Value::Object(Default::default());
            let ep = Props { v: event.get("Properties").unwrap_or(&empty), at: id };
            let ctx = || format!("event {event_name} of resource {id}");
            match kind {
                "HttpApi" => plan.routes.push(route_plan(t, &api_props, id, ep, opts).with_context(ctx)?),
                "SQS" => {
                    if let Some(s) = sqs_source(id, ep, &queues_by_arn).with_context(ctx)? {
                        plan.sqs_sources.push(s);
                    }
                }
                "DynamoDB" => {
                    if let Some(s) = stream_source(id, ep, &tables_by_stream, &queues_by_arn).with_context(ctx)? {
                        plan.stream_sources.push(s);
                    }
                }
                "Schedule" | "ScheduleV2" => {
                    if let Some(s) = schedule(id, kind, ep, opts).with_context(ctx)? {
                        plan.schedules.push(s);
                    }
                }
                other => {
                    bail!("unsupported: event type {other} (event {event_name}) in resource {id}")
                }
            }
        }
    }
    Ok(plan)
}

fn cors_plan(cors: &Value, at: &str) -> Result<Option<CorsPlan>> {
    let all = || vec!["*".to_string()];
    match cors {
        Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some(CorsPlan {
            allow_origins: all(),
            allow_headers: all(),
            allow_methods: all(),
            ..Default::default()
        })),
        Value::Object(_) => {
            let p = Props { v: cors, at };
            Ok(Some(CorsPlan {
                allow_origins: p.strs("AllowOrigins")?,
                allow_headers: p.strs("AllowHeaders")?,
                allow_methods: p.strs("AllowMethods")?,
                expose_headers: p.strs("ExposeHeaders")?,
                max_age: p.u32("MaxAge")?,
                allow_credentials: p.bool("AllowCredentials")?.unwrap_or(false),
            }))
        }
        other => {
            bail!("resource {at}: CorsConfiguration must be true, false or a map, got {other}")
        }
    }
}

fn route_plan(
    t: &Template,
    apis: &BTreeMap<Option<String>, Value>,
    function: &str,
    ep: Props<'_>,
    opts: &Options,
) -> Result<RoutePlan> {
    let api_id = ep.str("ApiId")?;
    if let Some(api) = &api_id {
        if !apis.contains_key(&Some(api.clone())) {
            bail!("ApiId {api} is not an AWS::Serverless::HttpApi of the template");
        }
    }
    let api = &apis[&api_id];
    let api_name = api_id.as_deref().unwrap_or("the implicit HttpApi");
    if let Some(v) = ep.str("PayloadFormatVersion")? {
        if v != "2.0" {
            bail!("unsupported: PayloadFormatVersion {v} (the local HTTP API speaks 2.0)");
        }
    }
    let (Some(path), Some(method)) = (ep.str("Path")?, ep.str("Method")?) else {
        bail!("unsupported: an HttpApi event without Path and Method (the $default route)");
    };
    let method = match method.to_ascii_uppercase().as_str() {
        "X-AMAZON-APIGATEWAY-ANY-METHOD" => "ANY".to_string(),
        m => m.to_string(),
    };

    let auth = api.get("Auth");
    let default_authorizer = auth.and_then(|a| a.get("DefaultAuthorizer")).and_then(Value::as_str);
    let chosen = match ep.obj("Auth").map(|a| a.str("Authorizer")).transpose()?.flatten() {
        Some(name) => Some(name),
        None => default_authorizer.map(str::to_string),
    };
    let auth_plan = match chosen.as_deref() {
        None | Some("NONE") => None,
        Some("AWS_IAM") => bail!("unsupported: the AWS_IAM authorizer"),
        Some(name) => {
            let def = auth
                .and_then(|a| a.get("Authorizers"))
                .and_then(|a| a.get(name))
                .ok_or_else(|| anyhow!("authorizer {name} is not declared on {api_name}"))?;
            Some(jwt_plan(name, def, opts, api_name)?)
        }
    };
    let _ = t;

    let key = format!("{method} {path}");
    let api_p = Props { v: api, at: api_name };
    let layers = [
        ep.obj("RouteSettings"),
        api_p.obj("RouteSettings").and_then(|rs| rs.obj(&key)),
        api_p.obj("DefaultRouteSettings"),
    ];
    let mut rate = None;
    let mut burst = None;
    for layer in layers.into_iter().flatten() {
        if rate.is_none() {
            rate = layer.str("ThrottlingRateLimit")?;
        }
        if burst.is_none() {
            burst = layer.u32("ThrottlingBurstLimit")?;
        }
    }
    let throttle = if rate.is_some() || burst.is_some() {
        let rate_limit = match rate {
            Some(r) => r.parse::<f64>().map_err(|_| anyhow!("ThrottlingRateLimit must be a number, got {r}"))?,
            None => 10_000.0,
        };
        Some(ThrottlePlan { rate_limit, burst_limit: burst.unwrap_or(5_000) })
    } else {
        None
    };

    Ok(RoutePlan { method, path, function: function.to_string(), auth: auth_plan, throttle })
}

fn jwt_plan(name: &str, def: &Value, opts: &Options, api_name: &str) -> Result<JwtAuthPlan> {
    let p = Props { v: def, at: api_name };
    let Some(jwt) = p.obj("JwtConfiguration") else {
        bail!("unsupported: authorizer {name} on {api_name} is not a JWT authorizer");
    };
    let source = p.str("IdentitySource")?.unwrap_or_else(|| "$request.header.Authorization".to_string());
    let header = source
        .strip_prefix("$request.header.")
        .ok_or_else(|| anyhow!("unsupported: IdentitySource {source} of authorizer {name}"))?
        .to_ascii_lowercase();
    let issuer = jwt.required_str("issuer")?;
    let pool = issuer
        .strip_prefix(&format!("https://cognito-idp.{REGION}.amazonaws.com/"))
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| {
            anyhow!("unsupported: issuer {issuer} of authorizer {name} (only the template's Cognito pools run locally)")
        })?;
    Ok(JwtAuthPlan {
        name: name.to_string(),
        identity_header: header,
        issuer: issuer.clone(),
        audiences: jwt.strs("audience")?,
        jwks_url: format!("http://127.0.0.1:{}/{pool}/.well-known/jwks.json", opts.aws_port),
    })
}

fn reject_filters(ep: Props<'_>) -> Result<()> {
    ep.reject(&["FilterCriteria"], "event filtering is not emulated")
}

fn report_failures(ep: Props<'_>) -> Result<bool> {
    Ok(ep.strs("FunctionResponseTypes")?.iter().any(|t| t == "ReportBatchItemFailures"))
}

fn sqs_source(function: &str, ep: Props<'_>, queues: &BTreeMap<String, String>) -> Result<Option<SqsSourcePlan>> {
    reject_filters(ep)?;
    if ep.bool("Enabled")? == Some(false) {
        return Ok(None);
    }
    let arn = ep.required_str("Queue")?;
    let url = queues.get(&arn).ok_or_else(|| anyhow!("Queue {arn} is not a queue of the template"))?;
    Ok(Some(SqsSourcePlan {
        function: function.to_string(),
        queue_url: url.clone(),
        queue_arn: arn,
        batch_size: ep.u32("BatchSize")?.unwrap_or(10),
        report_batch_item_failures: report_failures(ep)?,
        maximum_concurrency: ep.obj("ScalingConfig").map(|s| s.u32("MaximumConcurrency")).transpose()?.flatten(),
        maximum_batching_window: Duration::from_secs(ep.u32("MaximumBatchingWindowInSeconds")?.unwrap_or(0).into()),
    }))
}

fn stream_source(
    function: &str,
    ep: Props<'_>,
    tables: &BTreeMap<String, String>,
    queues: &BTreeMap<String, String>,
) -> Result<Option<StreamSourcePlan>> {
    reject_filters(ep)?;
    if ep.bool("Enabled")? == Some(false) {
        return Ok(None);
    }
    let arn = ep.required_str("Stream")?;
    let table = tables.get(&arn).ok_or_else(|| anyhow!("Stream {arn} is not the stream of a table of the template"))?;
    let on_failure = ep
        .obj("DestinationConfig")
        .and_then(|d| d.obj("OnFailure"))
        .map(|f| f.required_str("Destination"))
        .transpose()?
        .map(|dest| {
            queues.get(&dest).cloned().ok_or_else(|| anyhow!("unsupported: OnFailure destination {dest} (only queues)"))
        })
        .transpose()?;
    Ok(Some(StreamSourcePlan {
        function: function.to_string(),
        table_name: table.clone(),
        stream_arn: arn,
        batch_size: ep.u32("BatchSize")?.unwrap_or(100),
        starting_position: ep.str("StartingPosition")?.unwrap_or_else(|| "LATEST".to_string()),
        bisect_on_error: ep.bool("BisectBatchOnFunctionError")?.unwrap_or(false),
        maximum_retry_attempts: ep.i64("MaximumRetryAttempts")?.unwrap_or(-1),
        report_batch_item_failures: report_failures(ep)?,
        on_failure_queue_url: on_failure,
    }))
}

fn schedule(function: &str, kind: &str, ep: Props<'_>, opts: &Options) -> Result<Option<SchedulePlan>> {
    let (expr, enabled) = if kind == "Schedule" {
        (ep.required_str("Schedule")?, ep.bool("Enabled")?.unwrap_or(true))
    } else {
        let state = ep.str("State")?.unwrap_or_else(|| "ENABLED".to_string());
        (ep.required_str("ScheduleExpression")?, state != "DISABLED")
    };
    if !enabled {
        return Ok(None);
    }
    let interval = parse_rate(&expr)?;
    let input = ep
        .str("Input")?
        .map(|s| serde_json::from_str::<Value>(&s).map_err(|e| anyhow!("Input is not JSON: {e}")))
        .transpose()?;
    Ok(Some(SchedulePlan {
        function: function.to_string(),
        interval: opts.schedule_interval.unwrap_or(interval),
        input,
    }))
}

/// `rate(5 minutes)` -> 300 s. Cron and one-time schedules are not emulated.
fn parse_rate(expr: &str) -> Result<Duration> {
    let inner = expr
        .trim()
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| anyhow!("unsupported: schedule {expr} (only rate(...) expressions run locally)"))?;
    let (n, unit) = inner.trim().split_once(' ').ok_or_else(|| anyhow!("malformed schedule {expr}"))?;
    let n: u64 = n.parse().map_err(|_| anyhow!("malformed schedule {expr}"))?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => bail!("malformed schedule {expr}"),
    };
    Ok(Duration::from_secs(n * secs))
}

fn user_pool_info(t: &Template) -> Result<Option<UserPoolInfo>> {
    let Some(pool) = t.of_kind(Kind::UserPool).next() else {
        return Ok(None);
    };
    let Some(pool_id) = t.resolver.attribute(&pool.logical_id, "Ref").and_then(scalar_string) else {
        return Ok(None);
    };
    let client = t.of_kind(Kind::UserPoolClient).find_map(|c| {
        let owner = t.resolver.attribute(&c.logical_id, "UserPoolId").and_then(scalar_string)?;
        (owner == pool_id).then(|| t.resolver.attribute(&c.logical_id, "Ref").and_then(scalar_string)).flatten()
    });
    let Some(client_id) = client else {
        return Ok(None);
    };
    let attrs = t.resolver.resolve(pool.property("UsernameAttributes").unwrap_or(&Value::Null), &pool.logical_id)?;
    let username_is_email = attrs.as_array().is_some_and(|a| a.iter().any(|v| v == "email"));
    Ok(Some(UserPoolInfo { issuer: cognito_issuer(&pool_id), pool_id, client_id, username_is_email }))
}

/// The project root: the folder of the template.
pub fn project_root(template: &Path) -> PathBuf {
    let dir = template.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Environment;
    use serde_json::json;

    fn opts() -> Options {
        Options { aws_port: 4566, bin_dir: PathBuf::from("/bin-dir"), schedule_interval: None }
    }

    fn template(yaml: &str) -> Template {
        let env = Environment { search_dir: PathBuf::from("/s/search"), api_url: "http://127.0.0.1:3000".into() };
        let mut t = Template::parse(yaml, PathBuf::from("."), &BTreeMap::new(), &env).expect("parse");
        let s = |v: &str| json!(v);
        t.resolver.set_attributes("Pool", BTreeMap::from([("Ref".into(), s("us-east-1_abc"))]));
        t.resolver.set_attributes(
            "Client",
            BTreeMap::from([("Ref".into(), s("client123")), ("UserPoolId".into(), s("us-east-1_abc"))]),
        );
        t.resolver.set_attributes(
            "Jobs",
            BTreeMap::from([
                ("Ref".into(), s("http://127.0.0.1:4566/123456789012/commerce-local-Jobs")),
                ("Arn".into(), s("arn:aws:sqs:us-east-1:123456789012:commerce-local-Jobs")),
            ]),
        );
        t.resolver.set_attributes(
            "Orders",
            BTreeMap::from([
                ("Ref".into(), s("commerce-local-Orders")),
                ("StreamArn".into(), s("arn:aws:dynamodb:us-east-1:123456789012:table/commerce-local-Orders/stream/x")),
            ]),
        );
        t
    }

    const API: &str = r#"
Globals:
  Function:
    Timeout: 10
    Environment:
      Variables:
        LOG: info
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Properties:
      UsernameAttributes: [email]
  Client:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
  Jobs:
    Type: AWS::SQS::Queue
  Orders:
    Type: AWS::DynamoDB::Table
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: ["*"]
        AllowMethods: [GET]
        MaxAge: 600
      DefaultRouteSettings:
        ThrottlingRateLimit: 50
        ThrottlingBurstLimit: 100
      RouteSettings:
        "POST /orders":
          ThrottlingBurstLimit: 5
      Auth:
        DefaultAuthorizer: Cognito
        Authorizers:
          Cognito:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Sub https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}
              audience: [!Ref Client]
  GetThing:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: get-thing
    Properties:
      MemorySize: 512
      ReservedConcurrentExecutions: 4
      Environment:
        Variables:
          TABLE: !Ref Orders
          RETRIES: 3
      Events:
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /things/{id}
            Method: get
            Auth:
              Authorizer: NONE
        Create:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /orders
            Method: POST
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 2
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Orders.StreamArn
            StartingPosition: TRIM_HORIZON
            MaximumRetryAttempts: 2
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt Jobs.Arn
        Sweep:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
            Input: '{"sweep": true}'
"#;

    #[test]
    fn when_a_function_has_every_event_type_should_plan_them_all() {
        let t = template(API);
        let plan = build_plan(&t, &opts()).expect("plan");
        let f = &plan.functions["GetThing"];
        assert_eq!(f.binary, PathBuf::from("/bin-dir/get-thing"));
        assert_eq!(f.timeout, Duration::from_secs(10));
        assert_eq!(f.memory_mb, 512);
        assert_eq!(f.reserved_concurrency, Some(4));
        assert_eq!(f.environment["TABLE"], "commerce-local-Orders");
        assert_eq!(f.environment["RETRIES"], "3");
        assert_eq!(f.environment["LOG"], "info");

        let public = plan.routes.iter().find(|r| r.path == "/things/{id}").expect("public route");
        assert_eq!(public.method, "GET");
        assert!(public.auth.is_none());
        assert_eq!(public.throttle, Some(ThrottlePlan { rate_limit: 50.0, burst_limit: 100 }));
        let create = plan.routes.iter().find(|r| r.path == "/orders").expect("guarded route");
        let auth = create.auth.as_ref().expect("default authorizer");
        assert_eq!(auth.issuer, "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc");
        assert_eq!(auth.audiences, vec!["client123".to_string()]);
        assert_eq!(auth.identity_header, "authorization");
        assert_eq!(auth.jwks_url, "http://127.0.0.1:4566/us-east-1_abc/.well-known/jwks.json");
        assert_eq!(create.throttle, Some(ThrottlePlan { rate_limit: 50.0, burst_limit: 5 }));

        let cors = plan.cors.expect("cors");
        assert_eq!(cors.allow_methods, vec!["GET".to_string()]);
        assert_eq!(cors.max_age, Some(600));

        let sqs = &plan.sqs_sources[0];
        assert_eq!(sqs.queue_url, "http://127.0.0.1:4566/123456789012/commerce-local-Jobs");
        assert_eq!((sqs.batch_size, sqs.report_batch_item_failures, sqs.maximum_concurrency), (5, true, Some(2)));
        let stream = &plan.stream_sources[0];
        assert_eq!(stream.table_name, "commerce-local-Orders");
        assert_eq!((stream.starting_position.as_str(), stream.maximum_retry_attempts), ("TRIM_HORIZON", 2));
        assert_eq!(
            stream.on_failure_queue_url.as_deref(),
            Some("http://127.0.0.1:4566/123456789012/commerce-local-Jobs")
        );
        let sched = &plan.schedules[0];
        assert_eq!(sched.interval, Duration::from_secs(300));
        assert_eq!(sched.input, Some(json!({"sweep": true})));

        let pool = user_pool_info(&t).expect("pool").expect("a pool and client");
        assert_eq!((pool.pool_id.as_str(), pool.client_id.as_str()), ("us-east-1_abc", "client123"));
        assert!(pool.username_is_email);
    }

    #[test]
    fn when_an_event_type_is_not_emulated_should_fail_naming_it() {
        let yaml = API.replace("Type: Schedule\n", "Type: EventBridgeRule\n");
        let err = build_plan(&template(&yaml), &opts()).expect_err("unsupported");
        assert_eq!(
            err.root_cause().to_string(),
            "unsupported: event type EventBridgeRule (event Sweep) in resource GetThing"
        );
    }

    #[test]
    fn when_a_schedule_is_cron_should_fail_naming_it() {
        let yaml = API.replace("rate(5 minutes)", "cron(0 12 * * ? *)");
        let err = build_plan(&template(&yaml), &opts()).expect_err("cron");
        assert!(format!("{err:#}").contains("unsupported: schedule cron(0 12 * * ? *)"), "{err:#}");
    }

    #[test]
    fn when_a_binary_is_not_declared_should_fail() {
        let yaml = API.replace("Binary: get-thing", "Other: x");
        let err = build_plan(&template(&yaml), &opts()).expect_err("binary");
        assert!(err.to_string().contains("Metadata.BuildProperties.Binary"), "{err}");
    }

    #[test]
    fn when_substitutions_are_missing_should_fail_naming_the_placeholder() {
        let subs = BTreeMap::from([("ReserveFn".to_string(), "arn:x".to_string())]);
        let ok = substitute(r#"{"Resource": "${ReserveFn}", "Note": "${ not a key }"}"#, &subs, "Sm").expect("ok");
        assert_eq!(ok, r#"{"Resource": "arn:x", "Note": "${ not a key }"}"#);
        let err = substitute(r#"{"Resource": "${PayFn}"}"#, &subs, "Sm").expect_err("missing");
        assert_eq!(err.to_string(), "unresolved: ${PayFn} in the definition of state machine Sm");
    }

    #[test]
    fn when_rates_are_written_should_parse_them() {
        assert_eq!(parse_rate("rate(1 minute)").expect("ok"), Duration::from_secs(60));
        assert_eq!(parse_rate("rate(2 hours)").expect("ok"), Duration::from_secs(7200));
        assert!(parse_rate("rate(2 fortnights)").is_err());
    }
}
