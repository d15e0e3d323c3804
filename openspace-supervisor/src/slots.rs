//! The rendering slots as a sans-IO state machine: commands and instance events in, effects
//! for the launcher out, time passed in.
//!
//! ```text
//!            start                 ready
//!   IDLE ──────────▶ INITIALIZING ──────▶ RUNNING
//!    ▲                 │      │             │
//!    │ exited          │ stop │ no ready    │ stop
//!    │ (from any       ▼      ▼ in time     ▼
//!    │  state)       DEINITIALIZING ◀───────┘
//!    └───────────────  terminate, then kill after the grace period
//! ```
//!
//! Every instance a slot launches has a generation, so an event of an instance that is
//! already gone (a late exit, a late readiness) never touches the slot's next instance. A
//! slot leaves DEINITIALIZING only when its instance has exited: a new instance never shares
//! a slot (and its API port) with a dying one.

use std::time::{Duration, Instant};

/// A slot's state, as `STATUS` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Free.
    Idle,
    /// Launched, not ready yet.
    Initializing,
    /// Ready: its API port answers.
    Running,
    /// Stopping.
    Deinitializing,
}

impl SlotState {
    /// The name `STATUS` replies with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Initializing => "INITIALIZING",
            Self::Running => "RUNNING",
            Self::Deinitializing => "DEINITIALIZING",
        }
    }
}

/// Which instance of a slot an effect or event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instance {
    /// The slot (the session id of the command API).
    pub slot: u32,
    /// Counts the slot's launches.
    pub generation: u64,
}

/// What the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Launch the instance, rendering at `width` × `height`.
    Launch {
        /// The instance.
        instance: Instance,
        /// Its width, in pixels.
        width: u32,
        /// Its height, in pixels.
        height: u32,
    },
    /// Change the instance's resolution while it runs.
    Resize {
        /// The instance.
        instance: Instance,
        /// The new width.
        width: u32,
        /// The new height.
        height: u32,
    },
    /// Ask the instance to end (SIGTERM).
    Terminate(Instance),
    /// End it now (SIGKILL).
    Kill(Instance),
    /// Worth a log line and a metric: what happened to a slot.
    Notice {
        /// The instance.
        instance: Instance,
        /// What happened.
        notice: Notice,
    },
}

/// Things that happen to slots on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The instance became ready.
    Ready,
    /// It was not ready within the initialization timeout: it is being killed.
    InitTimedOut,
    /// It exited while starting or running (a crash).
    Crashed,
    /// It did not end within the grace period after a stop: it is being killed.
    KilledAfterGrace,
    /// It ended and its slot is free.
    Freed,
}

/// Why a command on a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// No free slot (`START`).
    #[error("no available slots")]
    NoSlot,
    /// The id names no slot.
    #[error("invalid id")]
    InvalidId,
    /// The slot has no instance (or it is already stopping).
    #[error("not running")]
    NotRunning,
}

#[derive(Debug, Clone)]
struct Slot {
    state: SlotState,
    generation: u64,
    /// When the current state's timer runs out: the initialization timeout while
    /// INITIALIZING, the grace period while DEINITIALIZING (then `None` once killed).
    deadline: Option<Instant>,
    width: u32,
    height: u32,
}

/// Every slot of one rendering server.
#[derive(Debug, Clone)]
pub struct Slots {
    slots: Vec<Slot>,
    init_timeout: Duration,
    stop_grace: Duration,
}

/// The resolution a slot renders at until told otherwise.
pub const DEFAULT_RESOLUTION: (u32, u32) = (1280, 720);

impl Slots {
    /// `capacity` idle slots.
    pub fn new(capacity: u32, init_timeout: Duration, stop_grace: Duration) -> Self {
        let slot = Slot {
            state: SlotState::Idle,
            generation: 0,
            deadline: None,
            width: DEFAULT_RESOLUTION.0,
            height: DEFAULT_RESOLUTION.1,
        };
        Self {
            slots: vec![slot; usize::try_from(capacity).unwrap_or(usize::MAX)],
            init_timeout,
            stop_grace,
        }
    }

    fn slot(&self, id: i64) -> Result<(u32, &Slot), SlotError> {
        let index = usize::try_from(id).map_err(|_| SlotError::InvalidId)?;
        let slot = self.slots.get(index).ok_or(SlotError::InvalidId)?;
        Ok((
            u32::try_from(index).map_err(|_| SlotError::InvalidId)?,
            slot,
        ))
    }

    fn instance(slot: u32, state: &Slot) -> Instance {
        Instance {
            slot,
            generation: state.generation,
        }
    }

    /// `START`: launches an instance in the lowest idle slot.
    pub fn start(&mut self, now: Instant) -> Result<(u32, Vec<Effect>), SlotError> {
        let index = self
            .slots
            .iter()
            .position(|s| s.state == SlotState::Idle)
            .ok_or(SlotError::NoSlot)?;
        let id = u32::try_from(index).map_err(|_| SlotError::NoSlot)?;
        let slot = &mut self.slots[index];
        slot.generation += 1;
        slot.state = SlotState::Initializing;
        slot.deadline = Some(now + self.init_timeout);
        let effect = Effect::Launch {
            instance: Self::instance(id, slot),
            width: slot.width,
            height: slot.height,
        };
        Ok((id, vec![effect]))
    }

    /// `STOP`: asks a starting or running instance to end.
    pub fn stop(&mut self, id: i64, now: Instant) -> Result<Vec<Effect>, SlotError> {
        let (id, _) = self.slot(id)?;
        let slot = &mut self.slots[id as usize];
        match slot.state {
            SlotState::Initializing | SlotState::Running => {
                slot.state = SlotState::Deinitializing;
                slot.deadline = Some(now + self.stop_grace);
                Ok(vec![Effect::Terminate(Self::instance(id, slot))])
            }
            SlotState::Idle | SlotState::Deinitializing => Err(SlotError::NotRunning),
        }
    }

    /// `RESOLUTION`: renders at `width` × `height`, now if an instance runs or starts, and
    /// for the slot's next instances.
    pub fn resolution(
        &mut self,
        id: i64,
        width: u32,
        height: u32,
    ) -> Result<Vec<Effect>, SlotError> {
        let (id, _) = self.slot(id)?;
        let slot = &mut self.slots[id as usize];
        match slot.state {
            SlotState::Initializing | SlotState::Running => {
                slot.width = width;
                slot.height = height;
                Ok(vec![Effect::Resize {
                    instance: Self::instance(id, slot),
                    width,
                    height,
                }])
            }
            SlotState::Idle | SlotState::Deinitializing => Err(SlotError::NotRunning),
        }
    }

    /// `STATUS`.
    pub fn status(&self, id: i64) -> Result<SlotState, SlotError> {
        self.slot(id).map(|(_, slot)| slot.state)
    }

    /// `SERVER_STATUS`: slots in use (not idle), and all of them.
    pub fn server_status(&self) -> (usize, usize) {
        let busy = self
            .slots
            .iter()
            .filter(|s| s.state != SlotState::Idle)
            .count();
        (busy, self.slots.len())
    }

    /// The slot's current instance, when it has one.
    pub fn current(&self, slot: u32) -> Option<Instance> {
        let state = self.slots.get(slot as usize)?;
        (state.state != SlotState::Idle).then(|| Self::instance(slot, state))
    }

    fn live(&mut self, instance: Instance) -> Option<&mut Slot> {
        self.slots
            .get_mut(instance.slot as usize)
            .filter(|s| s.generation == instance.generation && s.state != SlotState::Idle)
    }

    /// The launcher's readiness probe succeeded.
    pub fn ready(&mut self, instance: Instance) -> Vec<Effect> {
        match self.live(instance) {
            Some(slot) if slot.state == SlotState::Initializing => {
                slot.state = SlotState::Running;
                slot.deadline = None;
                vec![Effect::Notice {
                    instance,
                    notice: Notice::Ready,
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The instance's process exited (or could not be launched): its slot is free.
    pub fn exited(&mut self, instance: Instance) -> Vec<Effect> {
        let Some(slot) = self.live(instance) else {
            return Vec::new();
        };
        let was = slot.state;
        slot.state = SlotState::Idle;
        slot.deadline = None;
        let mut out = Vec::new();
        if was != SlotState::Deinitializing {
            out.push(Effect::Notice {
                instance,
                notice: Notice::Crashed,
            });
        }
        out.push(Effect::Notice {
            instance,
            notice: Notice::Freed,
        });
        out
    }

    /// Runs the timers: an instance not ready in time is killed; one not ended within the
    /// grace period after a stop is killed.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(deadline) = slot.deadline.filter(|d| *d <= now) else {
                continue;
            };
            let instance = Instance {
                slot: u32::try_from(index).unwrap_or(u32::MAX),
                generation: slot.generation,
            };
            let notice = match slot.state {
                SlotState::Initializing => Notice::InitTimedOut,
                SlotState::Deinitializing => Notice::KilledAfterGrace,
                SlotState::Idle | SlotState::Running => continue,
            };
            let _ = deadline;
            slot.state = SlotState::Deinitializing;
            slot.deadline = None;
            out.push(Effect::Notice { instance, notice });
            out.push(Effect::Kill(instance));
        }
        out
    }

    /// The earliest timer, for the driver to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: Duration = Duration::from_secs(120);
    const GRACE: Duration = Duration::from_secs(10);

    fn slots(capacity: u32) -> (Slots, Instant) {
        (Slots::new(capacity, INIT, GRACE), Instant::now())
    }

    fn launched(effects: &[Effect]) -> Instance {
        match effects {
            [Effect::Launch { instance, .. }] => *instance,
            other => panic!("expected one launch, got {other:?}"),
        }
    }

    #[test]
    fn start_takes_the_lowest_idle_slot_until_none_is_left() {
        let (mut slots, t0) = slots(3);
        let ids: Vec<u32> = (0..3).map(|_| slots.start(t0).expect("a slot").0).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(slots.start(t0), Err(SlotError::NoSlot));
        assert_eq!(slots.server_status(), (3, 3));
        let first = slots.current(1).expect("an instance");
        slots.stop(1, t0).expect("stopping");
        assert_eq!(
            slots.start(t0),
            Err(SlotError::NoSlot),
            "slot 1 is still ending"
        );
        slots.exited(first);
        let (id, effects) = slots.start(t0).expect("slot 1 again");
        assert_eq!(id, 1);
        assert_eq!(launched(&effects).generation, first.generation + 1);
    }

    #[test]
    fn an_instance_runs_when_ready_and_frees_its_slot_when_stopped() {
        let (mut slots, t0) = slots(2);
        let (id, effects) = slots.start(t0).expect("a slot");
        let instance = launched(&effects);
        assert_eq!(
            effects,
            [Effect::Launch {
                instance,
                width: 1280,
                height: 720
            }]
        );
        assert_eq!(slots.status(0), Ok(SlotState::Initializing));
        assert_eq!(
            slots.ready(instance),
            [Effect::Notice {
                instance,
                notice: Notice::Ready
            }]
        );
        assert_eq!(slots.status(i64::from(id)), Ok(SlotState::Running));
        assert_eq!(
            slots.resolution(0, 1920, 1080),
            Ok(vec![Effect::Resize {
                instance,
                width: 1920,
                height: 1080
            }])
        );
        assert_eq!(slots.stop(0, t0), Ok(vec![Effect::Terminate(instance)]));
        assert_eq!(slots.status(0), Ok(SlotState::Deinitializing));
        assert_eq!(
            slots.stop(0, t0),
            Err(SlotError::NotRunning),
            "already stopping"
        );
        assert_eq!(
            slots.exited(instance),
            [Effect::Notice {
                instance,
                notice: Notice::Freed
            }]
        );
        assert_eq!(slots.status(0), Ok(SlotState::Idle));
        // The next instance of the slot keeps the resolution set last.
        let (_, effects) = slots.start(t0).expect("a slot");
        assert!(matches!(
            effects[0],
            Effect::Launch {
                width: 1920,
                height: 1080,
                ..
            }
        ));
    }

    #[test]
    fn bad_ids_never_touch_a_slot() {
        let (mut slots, t0) = slots(3);
        slots.start(t0).expect("slot 0");
        for id in [-1, 3, i64::MAX, i64::MIN] {
            assert_eq!(slots.status(id), Err(SlotError::InvalidId), "{id}");
            assert_eq!(slots.stop(id, t0), Err(SlotError::InvalidId), "{id}");
            assert_eq!(
                slots.resolution(id, 640, 480),
                Err(SlotError::InvalidId),
                "{id}"
            );
        }
        assert_eq!(slots.stop(1, t0), Err(SlotError::NotRunning));
        assert_eq!(slots.resolution(2, 640, 480), Err(SlotError::NotRunning));
        assert_eq!(slots.server_status(), (1, 3), "only slot 0 in use");
    }

    #[test]
    fn an_instance_not_ready_in_time_is_killed_and_its_slot_freed_on_exit() {
        let (mut slots, t0) = slots(1);
        let instance = launched(&slots.start(t0).expect("a slot").1);
        assert_eq!(slots.next_deadline(), Some(t0 + INIT));
        assert!(slots.tick(t0 + INIT - Duration::from_millis(1)).is_empty());
        assert_eq!(
            slots.tick(t0 + INIT),
            [
                Effect::Notice {
                    instance,
                    notice: Notice::InitTimedOut
                },
                Effect::Kill(instance)
            ]
        );
        assert_eq!(slots.status(0), Ok(SlotState::Deinitializing));
        assert!(slots.ready(instance).is_empty(), "too late");
        assert!(slots.tick(t0 + INIT * 2).is_empty(), "killed once");
        slots.exited(instance);
        assert_eq!(slots.status(0), Ok(SlotState::Idle));
    }

    #[test]
    fn a_crash_frees_the_slot_and_a_stubborn_instance_is_killed_after_the_grace() {
        let (mut slots, t0) = slots(1);
        let crashing = launched(&slots.start(t0).expect("a slot").1);
        slots.ready(crashing);
        assert_eq!(
            slots.exited(crashing),
            [
                Effect::Notice {
                    instance: crashing,
                    notice: Notice::Crashed
                },
                Effect::Notice {
                    instance: crashing,
                    notice: Notice::Freed
                }
            ]
        );
        assert_eq!(slots.status(0), Ok(SlotState::Idle));

        // Stopped during initialization; it ignores the terminate.
        let stubborn = launched(&slots.start(t0).expect("a slot").1);
        assert_eq!(slots.stop(0, t0), Ok(vec![Effect::Terminate(stubborn)]));
        assert_eq!(
            slots.tick(t0 + GRACE),
            [
                Effect::Notice {
                    instance: stubborn,
                    notice: Notice::KilledAfterGrace
                },
                Effect::Kill(stubborn)
            ]
        );
        // A late event of the crashed instance does nothing to its successor.
        assert!(slots.exited(crashing).is_empty());
        assert_eq!(slots.status(0), Ok(SlotState::Deinitializing));
        slots.exited(stubborn);
        assert_eq!(slots.status(0), Ok(SlotState::Idle));
    }
}
