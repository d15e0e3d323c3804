//! The checks of the listings: channels and VODs.

use super::{channel, create, settings};
use crate::web::store::{Channel, ChannelQuery, LiveState, Vod, WebStore, WebStoreError};

fn query(
    directory: Option<&str>,
    tag: Option<&str>,
    live_only: bool,
    limit: usize,
) -> ChannelQuery {
    ChannelQuery {
        directory: directory.map(str::to_owned),
        tag: tag.map(str::to_owned),
        live_only,
        limit,
    }
}

async fn names(store: &dyn WebStore, query: &ChannelQuery) -> Vec<String> {
    let channels = store.channels(query).await.expect("listed");
    channels.into_iter().map(|c| c.username).collect()
}

pub(super) async fn channels_are_listed_in_order_and_filtered(store: &dyn WebStore) {
    const DIR: &str = "Conformance Listing";
    const RETRO: &str = "conformance-retro";
    const QUOTED: &str = r#"say "hi", [x]"#;
    // (name, state, viewers, tags); `L-` sorts before `l-` (byte order of the names).
    let layout: [(&str, LiveState, u64, &[&str]); 8] = [
        ("l-offline-many", LiveState::Offline, 900, &[RETRO]),
        ("l-offline-few", LiveState::Offline, 0, &[]),
        ("l-lurk", LiveState::Lurking, 1, &[RETRO, QUOTED]),
        ("l-lurk-more", LiveState::Lurking, 3, &[]),
        ("l-on-b", LiveState::Online, 5, &[]),
        ("L-on-z", LiveState::Online, 5, &[]),
        ("l-on-a", LiveState::Online, 5, &["speedrun", RETRO]),
        ("l-on-top", LiveState::Online, 50, &[]),
    ];
    for (n, (name, live, viewers, tags)) in layout.iter().enumerate() {
        create(store, name).await;
        store
            .update_settings(name, &settings(&format!("title {n}"), tags, DIR))
            .await
            .expect("updated");
        if *live != LiveState::Offline {
            let id = format!("{name}-stream");
            store
                .set_live(name, *live, Some(&id), 1_000)
                .await
                .expect("set");
        }
        assert!(store.set_viewers(name, *viewers, 1).await.expect("set"));
    }
    create(store, "l-elsewhere").await;
    store
        .update_settings("l-elsewhere", &settings("", &[RETRO], "Elsewhere"))
        .await
        .expect("updated");
    store
        .set_live("l-elsewhere", LiveState::Online, Some("e"), 1_000)
        .await
        .expect("set");
    assert!(
        store
            .set_viewers("l-elsewhere", 10_000, 1)
            .await
            .expect("set")
    );

    let in_dir = query(Some(DIR), None, false, 100);
    assert_eq!(
        names(store, &in_dir).await,
        [
            "l-on-top",
            "L-on-z",
            "l-on-a",
            "l-on-b",
            "l-lurk-more",
            "l-lurk",
            "l-offline-many",
            "l-offline-few"
        ],
        "online, lurking, offline; by viewers descending; then by name"
    );
    let listed = store.channels(&in_dir).await.expect("listed");
    assert_eq!(
        listed[2],
        channel(store, "l-on-a").await,
        "listed as read alone"
    );
    assert_eq!(
        names(store, &query(Some(DIR), None, true, 100)).await,
        [
            "l-on-top",
            "L-on-z",
            "l-on-a",
            "l-on-b",
            "l-lurk-more",
            "l-lurk"
        ],
        "live only"
    );
    assert_eq!(
        names(store, &query(Some(DIR), None, false, 2)).await,
        ["l-on-top", "L-on-z"]
    );
    assert!(
        names(store, &query(Some(DIR), None, false, 0))
            .await
            .is_empty()
    );
    assert!(
        names(store, &query(Some("conformance listing"), None, false, 100))
            .await
            .is_empty(),
        "directories match exactly"
    );
    assert_eq!(
        names(store, &query(None, Some(RETRO), false, 100)).await,
        ["l-elsewhere", "l-on-a", "l-lurk", "l-offline-many"]
    );
    assert_eq!(
        names(store, &query(Some(DIR), Some(RETRO), true, 1)).await,
        ["l-on-a"]
    );
    assert_eq!(
        names(store, &query(None, Some(QUOTED), false, 100)).await,
        ["l-lurk"]
    );
    for partial in ["conformance-ret", "retro", "say", "\"hi\""] {
        assert!(
            names(store, &query(None, Some(partial), false, 100))
                .await
                .is_empty(),
            "tags match whole: {partial}"
        );
    }

    // Unfiltered, the whole store (earlier checks' channels too) is in that order.
    let all = store
        .channels(&query(None, None, false, usize::MAX))
        .await
        .expect("listed");
    assert!(all.len() > layout.len(), "every channel is listed");
    let rank = |live: LiveState| match live {
        LiveState::Online => 0,
        LiveState::Lurking => 1,
        LiveState::Offline => 2,
    };
    for pair in all.windows(2) {
        let key = |c: &Channel| {
            (
                rank(c.live),
                std::cmp::Reverse(c.viewers),
                c.username.clone(),
            )
        };
        assert!(
            key(&pair[0]) < key(&pair[1]),
            "{:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
}

fn vod(username: &str, stream_id: &str, started_at_ms: i64, duration_ms: i64) -> Vod {
    Vod {
        started_at_ms,
        duration_ms,
        segments: duration_ms / 2_000,
        ..Vod::new(username, stream_id)
    }
}

pub(super) async fn vods_are_newest_first_and_per_user(store: &dyn WebStore) {
    create(store, "Vodder").await;
    create(store, "VodOther").await;
    let ids = async |name: &str, limit: usize| -> Vec<String> {
        let vods = store.vods(name, limit).await.expect("listed");
        vods.into_iter().map(|v| v.stream_id).collect()
    };
    assert!(store.vods("vodder", 10).await.expect("listed").is_empty());
    for vod in [
        vod("Vodder", "s1", 1_000, 60_000),
        vod("vodder", "s2", 3_000, 8_000),
        vod("VODDER", "s3", 2_000, 4_000),
        vod("VodOther", "s2", 9_000, 2_000),
    ] {
        store.add_vod(&vod).await.expect("added");
    }
    assert_eq!(ids("Vodder", 10).await, ["s2", "s3", "s1"], "newest first");
    assert_eq!(ids("vodder", 2).await, ["s2", "s3"]);
    assert!(ids("vodder", 0).await.is_empty());
    assert_eq!(
        store.vods("vodder", 1).await.expect("listed"),
        [vod("Vodder", "s2", 3_000, 8_000)],
        "every field, under the name as signed up"
    );
    assert_eq!(
        store.vods("VodOther", 10).await.expect("listed"),
        [vod("VodOther", "s2", 9_000, 2_000)],
        "never another user's"
    );

    // The same stream again replaces its VOD (here moving it to the front).
    store
        .add_vod(&vod("Vodder", "s1", 4_000, 90_000))
        .await
        .expect("replaced");
    assert_eq!(
        store.vods("Vodder", 10).await.expect("listed"),
        [
            vod("Vodder", "s1", 4_000, 90_000),
            vod("Vodder", "s2", 3_000, 8_000),
            vod("Vodder", "s3", 2_000, 4_000),
        ]
    );
    assert_eq!(ids("VodOther", 10).await, ["s2"]);

    assert!(store.vods("nobody", 10).await.expect("listed").is_empty());
    match store.add_vod(&vod("nobody", "s1", 1, 1)).await {
        Err(WebStoreError::NoUser(name)) => assert_eq!(name, "nobody"),
        other => panic!("expected NoUser, got {other:?}"),
    }
}
