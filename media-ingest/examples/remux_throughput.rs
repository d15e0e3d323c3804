//! Remux throughput: FLV → MPEG-TS segments with media-ingest's segmenter on one core, against
//! `ffmpeg -c copy -f hls` on the same file. Prints numbers; asserts nothing.
//!
//! ```text
//! cargo run --release -p media-ingest --example remux_throughput [-- SECONDS WIDTHxHEIGHT KBPS]
//! ```
//! Needs ffmpeg on PATH (it makes the input: testsrc2 + a tone, H.264 + AAC, default 60 s of
//! 1280x720 at 4,000 kbps).

use bytes::Bytes;
use media_ingest::{MediaFrame, MediaKind, hls::Segmenter};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u32 = args.next().map_or(Ok(60), |a| a.parse())?;
    let size = args.next().unwrap_or_else(|| "1280x720".into());
    let kbps: u32 = args.next().map_or(Ok(4000), |a| a.parse())?;

    let dir = std::env::temp_dir().join(format!("remux-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let input = dir.join("input.flv");
    println!("making {seconds} s of {size} H.264 at {kbps} kbps + AAC with ffmpeg …");
    make_input(&input, seconds, &size, kbps)?;
    let file = std::fs::read(&input)?;
    let frames = read_flv(&file)?;
    let payload: usize = frames.iter().map(|f| f.data.len()).sum();
    println!(
        "input: {:.1} MB FLV, {} tags, {:.1} MB of tag bodies",
        file.len() as f64 / 1e6,
        frames.len(),
        payload as f64 / 1e6
    );

    // Ours: repeat the whole stream until at least 3 s have been measured.
    let (mut runs, mut output_bytes, mut segments) = (0u32, 0usize, 0usize);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        for frame in &frames {
            if let Some(segment) = segmenter.push(frame)? {
                output_bytes += segment.data.len();
                segments += 1;
            }
        }
        if let Some(segment) = segmenter.finish() {
            output_bytes += segment.data.len();
            segments += 1;
        }
        runs += 1;
    }
    let ours = started.elapsed().as_secs_f64() / f64::from(runs);
    let ours_mbps = file.len() as f64 / 1e6 / ours;
    println!(
        "media-ingest segmenter (in memory, 1 core): {:.1} ms per run, {ours_mbps:.0} MB/s of FLV in, {} segments, TS overhead {:.1} %",
        ours * 1e3,
        segments / runs as usize,
        (output_bytes as f64 / f64::from(runs) / payload as f64 - 1.0) * 100.0
    );

    // Like for like with ffmpeg: from the FLV file on disk to segment files on disk.
    let ours_dir = dir.join("ours");
    std::fs::create_dir_all(&ours_dir)?;
    let mut best_files = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let frames = read_flv(&std::fs::read(&input)?)?;
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        for frame in &frames {
            if let Some(segment) = segmenter.push(frame)? {
                std::fs::write(
                    ours_dir.join(format!("{}.ts", segment.index)),
                    &segment.data,
                )?;
            }
        }
        if let Some(segment) = segmenter.finish() {
            std::fs::write(
                ours_dir.join(format!("{}.ts", segment.index)),
                &segment.data,
            )?;
        }
        best_files = best_files.min(started.elapsed().as_secs_f64());
    }
    let ours_files_mbps = file.len() as f64 / 1e6 / best_files;
    println!(
        "media-ingest, FLV file to segment files (1 core): {:.1} ms, {ours_files_mbps:.0} MB/s of FLV in",
        best_files * 1e3
    );

    // ffmpeg, same input, same segment target, writing to the temporary directory.
    let hls = dir.join("ffmpeg");
    std::fs::create_dir_all(&hls)?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&input)
            .args([
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_list_size",
                "0",
                "-threads",
                "1",
            ])
            .arg(hls.join("index.m3u8"))
            .status()?;
        if !status.success() {
            return Err(format!("ffmpeg failed: {status}").into());
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    let ffmpeg_mbps = file.len() as f64 / 1e6 / best;
    println!(
        "ffmpeg -c copy -f hls (process, files written): {:.1} ms, {ffmpeg_mbps:.0} MB/s of FLV in",
        best * 1e3
    );
    println!(
        "ratio, file to files: media-ingest is {:.1}x ffmpeg",
        ours_files_mbps / ffmpeg_mbps
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn make_input(
    path: &Path,
    seconds: u32,
    size: &str,
    kbps: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=44100:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-b:v",
        ])
        .arg(format!("{kbps}k"))
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ffmpeg could not make the input: {status}").into())
    }
}

/// The audio and video tags of an FLV file, as an RTMP publisher would send them.
fn read_flv(file: &[u8]) -> Result<Vec<MediaFrame>, Box<dyn std::error::Error>> {
    if file.get(..3) != Some(b"FLV") {
        return Err("not an FLV file".into());
    }
    let header = usize::try_from(u32::from_be_bytes(file[5..9].try_into()?))?;
    let mut at = header + 4;
    let mut frames = Vec::new();
    while at + 11 <= file.len() {
        let kind = file[at];
        let size = usize::from(file[at + 1]) << 16
            | usize::from(file[at + 2]) << 8
            | usize::from(file[at + 3]);
        let timestamp =
            u32::from_be_bytes([file[at + 7], file[at + 4], file[at + 5], file[at + 6]]);
        let body = file.get(at + 11..at + 11 + size).ok_or("truncated tag")?;
        let kind = match kind {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            _ => None,
        };
        if let Some(kind) = kind {
            frames.push(MediaFrame {
                kind,
                timestamp,
                data: Bytes::copy_from_slice(body),
            });
        }
        at += 11 + size + 4;
    }
    Ok(frames)
}
