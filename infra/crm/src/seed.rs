//! Realistic synthetic contacts for a tenant, written with COPY so that a million take seconds, not
//! hours. Seeded rows are bulk data, not API mutations: they carry no audit records or events.

use anyhow::{bail, Context};
use bytes::Bytes;
use crm_domain::contact::PhoneNumber;
use crm_domain::{Region, TenantId};
use futures::SinkExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write;
use uuid::Uuid;

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Tim",
    "Radia",
    "Edsger",
    "Hedy",
    "John",
    "Mary",
    "Guido",
    "Sophie",
    "Yukihiro",
    "Anita",
    "Niklaus",
    "Jean",
    "Bjarne",
    "Shafi",
    "Donald",
    "Leslie",
    "Fernando",
    "Carol",
    "Vint",
    "Joan",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Berners-Lee",
    "Perlman",
    "Dijkstra",
    "Lamarr",
    "McCarthy",
    "Keller",
    "van Rossum",
    "Wilson",
    "Matsumoto",
    "Borg",
    "Wirth",
    "Sammet",
    "Stroustrup",
    "Goldwasser",
    "Knuth",
    "Lamport",
    "Corbató",
    "Shaw",
    "Cerf",
    "Clarke",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
];
const COMPANIES: &[&str] = &[
    "Analytical Engines",
    "Difference Ltd",
    "Bletchley Systems",
    "Harvard Mark",
    "Bell Works",
    "Xerox Park",
    "Multics Inc",
    "Unix Labs",
    "Arpa Networks",
    "Eniac Corp",
    "Colossus Data",
    "Zuse Computing",
];
const TITLES: &[&str] = &[
    "Engineer",
    "Director",
    "Buyer",
    "Founder",
    "Analyst",
    "Manager",
    "Consultant",
];
/// Weighted towards the top of the funnel, as real tenants are.
const STAGES: &[&str] = &[
    "subscriber",
    "subscriber",
    "subscriber",
    "lead",
    "lead",
    "lead",
    "marketing_qualified_lead",
    "sales_qualified_lead",
    "opportunity",
    "customer",
    "customer",
    "evangelist",
    "other",
];
const SOURCES: &[&str] = &["import", "web_form", "api", "event"];
const OWNERS: usize = 20;
const BATCH: usize = 10_000;

/// Seeds `count` contacts, each with one email and one phone valid in the tenant's region.
pub async fn run(owner_url: &str, tenant: TenantId, count: usize) -> anyhow::Result<()> {
    let mut client = crate::connect(owner_url).await?;
    let region: String = client
        .query_opt(
            "select default_region from tenants where id = $1",
            &[&tenant.as_uuid()],
        )
        .await?
        .map(|row| row.get(0))
        .with_context(|| format!("no tenant {tenant}"))?;
    let region = Region::parse(&region).context("the tenant's region is not known")?;
    let mut rng = StdRng::from_os_rng();
    let run_tag: u32 = rng.random();
    let mut written = 0;
    while written < count {
        let size = BATCH.min(count - written);
        let (contacts, emails, phones) = batch(&mut rng, tenant, region, run_tag, written, size)?;
        let tx = client.transaction().await?;
        copy(
            &tx,
            "contacts (tenant_id, id, first_name, last_name, display_name, company, job_title, lifecycle_stage, owner_id, source)",
            contacts,
        )
        .await?;
        copy(&tx, "contact_emails (tenant_id, contact_id, position, address, address_key, label, is_primary)", emails).await?;
        copy(&tx, "contact_phones (tenant_id, contact_id, position, raw, e164, region, national, label, is_primary)", phones).await?;
        tx.commit().await?;
        written += size;
        if written % 100_000 == 0 || written == count {
            tracing::info!(written, count, "seeding");
        }
    }
    Ok(())
}

async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
    data: String,
) -> anyhow::Result<()> {
    let sink = tx.copy_in(&format!("copy {target} from stdin")).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data)).await?;
    sink.finish()
        .await
        .with_context(|| format!("copying into {target}"))?;
    Ok(())
}

fn batch(
    rng: &mut StdRng,
    tenant: TenantId,
    region: Region,
    run_tag: u32,
    offset: usize,
    size: usize,
) -> anyhow::Result<(String, String, String)> {
    let (mut contacts, mut emails, mut phones) = (String::new(), String::new(), String::new());
    for n in offset..offset + size {
        let id = Uuid::now_v7();
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let domain = DOMAINS[rng.random_range(0..DOMAINS.len())];
        // A local part as people have them (first.last and a number); the run tag goes into the
        // domain, so that no word is shared by every address (search's typo matching would
        // compare it with every contact) while repeated seeds of one tenant stay unique.
        let local = format!(
            "{}.{}{n}",
            first.to_lowercase(),
            last.to_lowercase().replace(' ', "")
        );
        let address = format!("{local}@{run_tag:x}.{domain}");
        let phone = phone_number(rng, region)?;
        let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        let (company, title, stage, source) = (
            pick(rng, COMPANIES),
            pick(rng, TITLES),
            pick(rng, STAGES),
            pick(rng, SOURCES),
        );
        let owner = rng.random_range(1..=OWNERS);
        writeln!(
            contacts,
            "{tenant}\t{id}\t{first}\t{last}\t{first} {last}\t{company}\t{title}\t{stage}\tuser-{owner}\t{source}"
        )?;
        writeln!(
            emails,
            "{tenant}\t{id}\t0\t{address}\t{}\twork\tt",
            address.to_lowercase()
        )?;
        writeln!(
            phones,
            "{tenant}\t{id}\t0\t{}\t{}\t{}\t{}\tmobile\tt",
            phone.raw(),
            phone.e164(),
            phone.region(),
            phone.national()
        )?;
    }
    Ok((contacts, emails, phones))
}

/// A number libphonenumber accepts for the region: mobiles for GB, geographic numbers elsewhere
/// (North American format, read with a +1 country code).
/// Draws until libphonenumber accepts one as a number of `region`; gives up after 100 draws.
fn phone_number(rng: &mut StdRng, region: Region) -> anyhow::Result<PhoneNumber> {
    for _ in 0..100 {
        let raw = if region.to_string() == "GB" {
            format!(
                "074{:02} {:06}",
                rng.random_range(0..100),
                rng.random_range(100_000..999_999)
            )
        } else {
            const AREA_CODES: [u16; 6] = [212, 312, 415, 617, 646, 206];
            let area = AREA_CODES[rng.random_range(0..AREA_CODES.len())];
            format!(
                "+1 {area} {} {:04}",
                rng.random_range(201..989),
                rng.random_range(0..9999)
            )
        };
        // Some ranges belong to a neighbour sharing the country code (07911 1... is Guernsey's).
        if let Ok(phone) = PhoneNumber::parse(&raw, region, "/phone") {
            if phone.region() == region {
                return Ok(phone);
            }
        }
    }
    bail!("could not generate a valid phone number for {region}")
}
