use super::*;

const T0_MS: u64 = 1_700_000_000_000;

struct World {
    scheduler: Scheduler,
    now: Instant,
    server: LinkId,
    encoder: LinkId,
}

fn drain(scheduler: &mut Scheduler) -> Vec<Action> {
    std::iter::from_fn(|| scheduler.poll_action()).collect()
}

fn world(capacity: &str) -> World {
    let now = Instant::now();
    let mut scheduler = Scheduler::new(SchedulerConfig::default());
    let address = ServerAddress {
        ip: "10.0.0.2".into(),
        port: 1935,
        ssl: false,
    };
    let server = scheduler.handle_link_opened(LinkRole::RtmpServer, Some(address), now);
    let encoder = scheduler.handle_link_opened(LinkRole::Encoder, None, now);
    scheduler.handle_message(encoder, &format!("REGISTER\nCapacity: {capacity}"), now);
    assert!(drain(&mut scheduler).is_empty());
    World {
        scheduler,
        now,
        server,
        encoder,
    }
}

fn request(world: &mut World, request_id: &str, channel: &str) -> Vec<Action> {
    let text = format!(
        "PUBLISH-REQUEST\nRequest-ID: {request_id}\nStream-Channel: {channel}\nStream-Key: key-{channel}\nUser-IP: 1.2.3.4"
    );
    world
        .scheduler
        .handle_message(world.server, &text, world.now);
    drain(&mut world.scheduler)
}

/// Requests `channel` and accepts its key; returns the new stream id.
fn publish(world: &mut World, channel: &str) -> String {
    let actions = request(world, "r1", channel);
    let [
        Action::VerifyKey {
            verification, key, ..
        },
    ] = &actions[..]
    else {
        panic!("expected a key check, got {actions:?}")
    };
    assert_eq!(key, &format!("key-{channel}"));
    world
        .scheduler
        .handle_verdict(*verification, Some(Grant::default()), T0_MS, 7);
    let actions = drain(&mut world.scheduler);
    let Some(stream_id) = actions.iter().find_map(|action| match action {
        Action::Send {
            message: Outbound::PublishAccept { stream_id, .. },
            ..
        } => Some(stream_id),
        _ => None,
    }) else {
        panic!("expected an accept, got {actions:?}")
    };
    stream_id.clone()
}

fn is_deny(actions: &[Action]) -> bool {
    matches!(
        actions,
        [Action::Send {
            message: Outbound::PublishDeny { .. },
            ..
        }]
    )
}

#[test]
fn an_accepted_publisher_gets_a_stream_id_and_the_least_loaded_encoder_starts() {
    let mut w = world("2");
    let actions = request(&mut w, "r1", "ch");
    let [
        Action::VerifyKey {
            verification,
            channel,
            user_ip,
            ..
        },
    ] = &actions[..]
    else {
        panic!("{actions:?}")
    };
    assert_eq!((channel.as_str(), user_ip.as_str()), ("ch", "1.2.3.4"));
    let grant = Grant {
        record: true,
        previews: "320x180,5".into(),
        resolutions: "640x360-30".into(),
    };
    w.scheduler
        .handle_verdict(*verification, Some(grant), T0_MS, 0xdead_beef);
    let actions = drain(&mut w.scheduler);
    let expected_id = format!("{T0_MS:016x}00000001deadbeef");
    assert_eq!(
        actions,
        vec![
            Action::StreamStarted {
                channel: "ch".into(),
                stream_id: expected_id.clone()
            },
            Action::Send {
                link: w.server,
                message: Outbound::PublishAccept {
                    request_id: "r1".into(),
                    stream_id: expected_id.clone()
                }
            },
            Action::Send {
                link: w.encoder,
                message: Outbound::EncodeStart {
                    channel: "ch".into(),
                    stream_id: expected_id,
                    source_type: SourceType::Rtmp,
                    source_uri: "rtmp://10.0.0.2:1935/ch/key-ch".into(),
                    resolutions: "640x360-30".into(),
                    record: true,
                    previews: "320x180,5".into(),
                },
            },
        ]
    );
    assert_eq!(
        w.scheduler.capacity(),
        CapacityReport {
            load: 1,
            capacity: 2,
            encoder_count: 1
        }
    );
}

#[test]
fn one_publisher_per_channel_even_while_its_key_is_checked() {
    let mut w = world("5");
    assert!(matches!(
        request(&mut w, "r1", "ch")[..],
        [Action::VerifyKey { .. }]
    ));
    assert!(is_deny(&request(&mut w, "r2", "ch")), "pending");
    assert!(
        matches!(
            request(&mut w, "r3", "other")[..],
            [Action::VerifyKey { .. }]
        ),
        "another channel is fine"
    );
}

#[test]
fn a_refused_key_or_a_full_cluster_denies_and_frees_the_channel() {
    let mut w = world("1");
    let actions = request(&mut w, "r1", "ch");
    let [Action::VerifyKey { verification, .. }] = &actions[..] else {
        panic!("{actions:?}")
    };
    w.scheduler.handle_verdict(*verification, None, T0_MS, 1);
    assert!(is_deny(&drain(&mut w.scheduler)));
    publish(&mut w, "ch");
    assert!(
        is_deny(&request(&mut w, "r2", "second")),
        "the only encoder is full"
    );

    let mut nobody = World {
        scheduler: Scheduler::new(SchedulerConfig::default()),
        ..world("1")
    };
    let server = nobody
        .scheduler
        .handle_link_opened(LinkRole::RtmpServer, None, nobody.now);
    nobody.server = server;
    assert!(
        is_deny(&request(&mut nobody, "r1", "ch")),
        "no encoder at all"
    );
}

#[test]
fn load_is_released_when_the_encoder_reports_the_stream_closed() {
    let mut w = world("1");
    let stream = publish(&mut w, "ch");
    w.scheduler.handle_message(
        w.server,
        &format!("PUBLISH-END\nStream-Channel: ch\nStream-ID: {stream}"),
        w.now,
    );
    let stop = Outbound::EncodeStop {
        channel: "ch".into(),
        stream_id: stream.clone(),
    };
    assert_eq!(
        drain(&mut w.scheduler),
        vec![Action::Send {
            link: w.encoder,
            message: stop
        }]
    );
    assert_eq!(
        w.scheduler.capacity().load,
        1,
        "the encoder is still finishing"
    );

    w.scheduler.handle_message(
        w.encoder,
        &format!("STREAM-CLOSED\nStream-Channel: ch\nStream-ID: {stream}"),
        w.now,
    );
    assert_eq!(
        drain(&mut w.scheduler),
        vec![Action::Callback(StreamEvent::Closed {
            channel: "ch".into(),
            stream_id: stream
        })]
    );
    assert_eq!(w.scheduler.capacity().load, 0);
    publish(&mut w, "ch");
}

#[test]
fn an_encoder_that_disconnects_releases_its_streams() {
    let mut w = world("1");
    let stream = publish(&mut w, "ch");
    w.scheduler.handle_link_closed(w.encoder);
    let kill = Outbound::StreamKill {
        channel: "ch".into(),
        stream: StreamSelector::Id(stream.clone()),
    };
    assert_eq!(
        drain(&mut w.scheduler),
        vec![
            Action::Send {
                link: w.server,
                message: kill
            },
            Action::Callback(StreamEvent::Closed {
                channel: "ch".into(),
                stream_id: stream
            })
        ]
    );
    assert_eq!(
        w.scheduler.capacity(),
        CapacityReport {
            load: 0,
            capacity: 0,
            encoder_count: 0
        }
    );
    let second = w
        .scheduler
        .handle_link_opened(LinkRole::Encoder, None, w.now);
    w.scheduler
        .handle_message(second, "REGISTER\nCapacity: 1", w.now);
    publish(&mut w, "ch");
}

#[test]
fn a_server_that_disconnects_stops_its_encodes() {
    let mut w = world("3");
    let stream = publish(&mut w, "ch");
    w.scheduler.handle_link_closed(w.server);
    let stop = Outbound::EncodeStop {
        channel: "ch".into(),
        stream_id: stream,
    };
    assert_eq!(
        drain(&mut w.scheduler),
        vec![Action::Send {
            link: w.encoder,
            message: stop
        }]
    );
}

#[test]
fn only_the_assigned_encoder_and_server_may_speak_for_a_stream() {
    let mut w = world("3");
    let stream = publish(&mut w, "ch");
    let other = w
        .scheduler
        .handle_link_opened(LinkRole::Encoder, None, w.now);
    let available = format!(
        "STREAM-AVAILABLE\nStream-Channel: ch\nStream-ID: {stream}\nStream-Type: HLS-LIVE\nResolution: 640x360-30\nIndex-file: /hls/ch/{stream}/live.m3u8"
    );
    w.scheduler.handle_message(other, &available, w.now);
    let actions = drain(&mut w.scheduler);
    assert!(
        matches!(
            &actions[..],
            [Action::Send {
                message: Outbound::Error {
                    code: ErrorCode::NotYours,
                    ..
                },
                ..
            }]
        ),
        "{actions:?}"
    );
    w.scheduler.handle_message(w.encoder, &available, w.now);
    assert!(matches!(
        &drain(&mut w.scheduler)[..],
        [Action::Callback(StreamEvent::Available { .. })]
    ));
    w.scheduler.handle_message(
        w.server,
        "PUBLISH-END\nStream-Channel: ch\nStream-ID: someone-elses",
        w.now,
    );
    assert!(matches!(
        &drain(&mut w.scheduler)[..],
        [Action::Send {
            message: Outbound::Error {
                code: ErrorCode::NotYours,
                ..
            },
            ..
        }]
    ));
}

#[test]
fn heartbeats_go_out_and_silent_links_are_dropped_with_their_load() {
    let mut w = world("1");
    publish(&mut w, "ch");
    let at = |secs| w.now + Duration::from_secs(secs);
    assert_eq!(w.scheduler.poll_timeout(), Some(at(20)));
    w.scheduler.handle_message(w.server, "HEARTBEAT", at(19));
    w.scheduler.handle_timeout(at(20));
    let beats = drain(&mut w.scheduler);
    assert_eq!(beats.len(), 2);
    assert!(beats.iter().all(|a| matches!(
        a,
        Action::Send {
            message: Outbound::Heartbeat,
            ..
        }
    )));
    // The encoder last spoke at 0 s: at 60 s it is dropped; the server (19 s) is not.
    w.scheduler.handle_timeout(at(60));
    let actions = drain(&mut w.scheduler);
    assert!(
        actions.contains(&Action::Close {
            link: w.encoder,
            reason: "silent for 60s".into()
        }),
        "{actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Close { link, .. } if *link == w.server))
    );
    assert_eq!(w.scheduler.capacity().load, 0);
}

#[test]
fn malformed_messages_get_an_error_and_oversized_ones_close_the_link() {
    let mut w = world("1");
    w.scheduler.handle_message(w.server, "not a message", w.now);
    assert!(matches!(
        &drain(&mut w.scheduler)[..],
        [Action::Send {
            message: Outbound::Error {
                code: ErrorCode::InvalidMessage,
                ..
            },
            ..
        }]
    ));
    w.scheduler
        .handle_message(w.server, "REGISTER\nCapacity: 9", w.now);
    assert!(matches!(
        &drain(&mut w.scheduler)[..],
        [Action::Send {
            message: Outbound::Error {
                code: ErrorCode::WrongRole,
                ..
            },
            ..
        }]
    ));
    let huge = format!("HEARTBEAT\n\n{}", "x".repeat(MAX_MESSAGE_BYTES));
    w.scheduler.handle_message(w.server, &huge, w.now);
    assert!(matches!(
        &drain(&mut w.scheduler)[..],
        [Action::Close { .. }]
    ));
    publish(&mut w, "ch");
}

#[test]
fn the_close_command_kills_one_or_every_stream_of_a_channel() {
    let mut w = world("0");
    let stream = publish(&mut w, "ch");
    assert_eq!(
        w.scheduler.close("ch", &StreamSelector::Id("nope".into())),
        0
    );
    assert_eq!(w.scheduler.close("other", &StreamSelector::All), 0);
    assert_eq!(w.scheduler.close("ch", &StreamSelector::All), 1);
    let kill = Outbound::StreamKill {
        channel: "ch".into(),
        stream: StreamSelector::Id(stream),
    };
    assert_eq!(
        drain(&mut w.scheduler),
        vec![Action::Send {
            link: w.server,
            message: kill
        }]
    );
    assert_eq!(
        w.scheduler.capacity().capacity,
        -1,
        "capacity 0 is unlimited"
    );
}

#[test]
fn the_report_lists_streams_by_their_own_id_with_server_and_encoder() {
    let mut w = world("3");
    let first = publish(&mut w, "alpha");
    let report = w.scheduler.report();
    assert_eq!(
        report.active_streams,
        vec![crate::proto::ActiveStream {
            channel: "alpha".into(),
            stream_id: first.clone(),
            streaming_server: Some(w.server),
            encoder: Some(w.encoder),
        }]
    );
    assert_eq!(report.streaming_servers.len(), 1);
    assert_eq!(report.streaming_servers[0].id, w.server);
    assert_eq!(report.streaming_servers[0].role, LinkRole::RtmpServer);
    assert_eq!(
        report.encoders,
        vec![crate::proto::EncoderReport {
            id: w.encoder,
            capacity: 3,
            load: 1
        }]
    );

    // The publisher leaves: the stream stays active, without a server, until it is closed.
    let end = format!("PUBLISH-END\nStream-Channel: alpha\nStream-ID: {first}");
    w.scheduler.handle_message(w.server, &end, w.now);
    drain(&mut w.scheduler);
    let report = w.scheduler.report();
    assert_eq!(report.active_streams[0].streaming_server, None);
    let closed = format!("STREAM-CLOSED\nStream-Channel: alpha\nStream-ID: {first}");
    w.scheduler.handle_message(w.encoder, &closed, w.now);
    drain(&mut w.scheduler);
    let report = w.scheduler.report();
    assert!(report.active_streams.is_empty());
    assert_eq!(report.encoders[0].load, 0);
}
