//! Output channels and frames.

use super::routine::Zone;

/// Highest level of any channel, in permille.
pub const LEVEL_MAX: u16 = 1000;

/// Which frame slots belong to each zone, and which one is the heater.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMap {
    zones: [Vec<usize>; 5],
    heat: Option<usize>,
    count: usize,
}

/// Why a channel map is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelMapError {
    /// A slot is used twice.
    #[error("channel {0} is assigned twice")]
    Duplicate(usize),
    /// No motor channel at all.
    #[error("no zone has a channel")]
    NoMotors,
}

impl ChannelMap {
    /// Builds a map from per-zone slot lists (in [`Zone::ALL`] order) and an optional heater slot.
    /// Slots are dense frame indices; `count` is one past the largest.
    pub fn new(zones: [Vec<usize>; 5], heat: Option<usize>) -> Result<ChannelMap, ChannelMapError> {
        let mut used: Vec<usize> = zones.iter().flatten().copied().collect();
        if used.is_empty() {
            return Err(ChannelMapError::NoMotors);
        }
        used.extend(heat);
        let mut sorted = used.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ChannelMapError::Duplicate(w[0]));
        }
        let count = sorted.last().map_or(0, |last| last + 1);
        Ok(ChannelMap { zones, heat, count })
    }

    /// The default headrest: two motors per zone (left, right) and a heater, 11 channels.
    pub(crate) fn headrest() -> ChannelMap {
        ChannelMap {
            zones: [vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7], vec![8, 9]],
            heat: Some(10),
            count: 11,
        }
    }

    /// Slots of one zone.
    pub(crate) fn zone(&self, zone: Zone) -> &[usize] {
        &self.zones[zone.index()]
    }

    /// The heater's slot, if the device has one.
    pub fn heat(&self) -> Option<usize> {
        self.heat
    }

    /// Number of slots in a frame.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

/// The level of every channel at one instant, in permille.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// One level per slot, 0..=1000.
    pub levels: Vec<u16>,
}

impl Frame {
    /// All channels off.
    pub fn zero(count: usize) -> Frame {
        Frame {
            levels: vec![0; count],
        }
    }

    /// True when every channel is off.
    pub fn is_zero(&self) -> bool {
        self.levels.iter().all(|&l| l == 0)
    }
}
