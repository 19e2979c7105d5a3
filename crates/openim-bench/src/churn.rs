//! `--churn`: what one member change costs in a large group. Builds a group of `--members`
//! members (and a 10-member one to compare), then times, one at a time: a user joining (a group
//! anyone may join), the same user quitting, and a member's group nickname changing. Each
//! operation's latency is the REST call's; with `--server-pid` the server's CPU time per
//! operation is reported too, which includes the work after the answer (notifying every
//! member). Cost proportional to the change shows as the same numbers for both groups.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde_json::json;

use crate::{Args, post};

/// Users added per invitation (the API's list limit).
const INVITE_CHUNK: usize = 1000;

pub async fn run(args: &Args, http: &reqwest::Client, admin: &str) -> anyhow::Result<()> {
    let run = format!("c{}", std::process::id());
    let ops = args.ops;
    let members: Vec<String> = (0..args.members).map(|i| format!("{run}-m{i}")).collect();
    let joiners: Vec<String> = (0..ops).map(|i| format!("{run}-j{i}")).collect();
    eprintln!("churn: registering {} users", members.len() + joiners.len());
    for chunk in members.chunks(500).chain(joiners.chunks(500)) {
        let list: Vec<_> = chunk.iter().map(|u| json!({"userID": u, "nickname": u})).collect();
        post(http, &args.api, admin, "/user/user_register", json!({ "users": list })).await?;
    }
    let mut tokens = Vec::with_capacity(ops);
    for u in &joiners {
        let t = post(http, &args.api, admin, "/auth/get_user_token", json!({"userID": u, "platformID": 1})).await?;
        tokens.push(t["token"].as_str().context("user token")?.to_owned());
    }
    let owner = post(http, &args.api, admin, "/auth/get_user_token", json!({"userID": members[0], "platformID": 1}))
        .await?["token"]
        .as_str()
        .context("owner token")?
        .to_owned();

    for (name, size) in [("small", 10.min(members.len())), ("large", members.len())] {
        let group = format!("{run}-{name}");
        let started = Instant::now();
        post(
            http,
            &args.api,
            admin,
            "/group/create_group",
            json!({"ownerUserID": members[0], "memberUserIDs": [], "groupInfo":
                {"groupID": group, "groupName": name, "groupType": 2, "needVerification": 2}}),
        )
        .await?;
        for chunk in members[1..size].chunks(INVITE_CHUNK) {
            post(
                http,
                &args.api,
                admin,
                "/group/invite_user_to_group",
                json!({"groupID": group, "invitedUserIDs": chunk}),
            )
            .await?;
        }
        eprintln!("churn: {name} group of {size} built in {:.1?}", started.elapsed());
        // Let the notifications of the build drain before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;

        let mut join = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut quit = join.clone();
        let mut change = join.clone();
        let cpu_before = args.server_pid.map(cpu_ticks).transpose()?;
        let wall = Instant::now();
        for (i, (user, token)) in joiners.iter().zip(&tokens).enumerate() {
            let t = Instant::now();
            post(
                http,
                &args.api,
                token,
                "/group/join_group",
                json!({"groupID": group, "joinSource": 3, "inviterUserID": user}),
            )
            .await?;
            join.record(t.elapsed().as_micros() as u64)?;
            let t = Instant::now();
            post(http, &args.api, token, "/group/quit_group", json!({"groupID": group})).await?;
            quit.record(t.elapsed().as_micros() as u64)?;
            let t = Instant::now();
            let member = &members[1 + i % (size - 1)];
            let set = json!({"members": [{"groupID": group, "userID": member, "nickname": format!("n{i}")}]});
            post(http, &args.api, &owner, "/group/set_group_member_info", set).await?;
            change.record(t.elapsed().as_micros() as u64)?;
        }
        // The notifications' fan-out runs after the answers: let it finish inside the window.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = match (args.server_pid, cpu_before) {
            (Some(pid), Some(before)) => {
                let ticks = cpu_ticks(pid)? - before;
                format!(" server_cpu_per_op={:.2}ms", ticks as f64 * 10.0 / (3 * ops) as f64)
            }
            _ => String::new(),
        };
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "churn: group={name} members={size} ops={} wall={:.1?} join_p50={:.2}ms join_p99={:.2}ms quit_p50={:.2}ms \
             quit_p99={:.2}ms change_p50={:.2}ms change_p99={:.2}ms{cpu}",
            3 * ops,
            wall.elapsed(),
            ms(&join, 0.5),
            ms(&join, 0.99),
            ms(&quit, 0.5),
            ms(&quit, 0.99),
            ms(&change, 0.5),
            ms(&change, 0.99),
        );
    }
    Ok(())
}

/// The process's user + system CPU time, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}
