//! Technique waveforms in integer arithmetic, so every platform computes the same levels.
//!
//! Phases are fixed-point fractions of a cycle in `0..PHASE_ONE`; levels are permille.

use super::routine::Technique;

/// One full cycle in phase units.
pub(crate) const PHASE_ONE: u32 = 1 << 16;

/// Smoothstep `3x² - 2x³` on permille: eases in and out with zero slope at both ends.
pub(crate) fn smoothstep(x: u32) -> u32 {
    let x = u64::from(x.min(1000));
    let y = (3 * x * x * 1000 - 2 * x * x * x) / 1_000_000;
    // y <= 1000 because x <= 1000.
    y as u32
}

/// A smooth periodic bump: 0 at phase 0, 1000 at half a cycle, back to 0.
pub(crate) fn bump(phase: u32) -> u32 {
    let p = phase % PHASE_ONE;
    let half = PHASE_ONE / 2;
    let rising = if p < half { p } else { PHASE_ONE - p };
    smoothstep(rising * 1000 / half)
}

/// Phase of the `index`-th of `count` channels that share a rotation.
fn offset(phase: u32, index: usize, count: usize) -> u32 {
    let count = count.max(1) as u64;
    let shift = (index as u64 % count) * u64::from(PHASE_ONE) / count;
    // shift < PHASE_ONE, so the sum fits in u64 and the modulo in u32.
    ((u64::from(phase) + u64::from(PHASE_ONE) - shift) % u64::from(PHASE_ONE)) as u32
}

/// Press: ramp up over 30% of the cycle, hold for 40%, release over 30%.
fn press(phase: u32) -> u32 {
    let p = u64::from(phase % PHASE_ONE) * 1000 / u64::from(PHASE_ONE);
    let p = p as u32;
    match p {
        0..300 => smoothstep(p * 1000 / 300),
        300..700 => 1000,
        _ => smoothstep((1000 - p) * 1000 / 300),
    }
}

/// Level (permille) of one channel of a non-sweep technique.
///
/// `index` and `count` place the channel among the zone's channels.
pub(crate) fn zone_level(technique: Technique, phase: u32, index: usize, count: usize) -> u32 {
    match technique {
        // A floor keeps contact while the peak travels around the zone.
        Technique::Circles => 200 + bump(offset(phase, index, count)) * 800 / 1000,
        Technique::Press => press(phase),
        // Neighbouring channels alternate, and pressure never drops below 40%.
        Technique::Knead => {
            let half = if index % 2 == 1 { PHASE_ONE / 2 } else { 0 };
            400 + bump((phase + half) % PHASE_ONE) * 600 / 1000
        }
        Technique::Sweep => sweep(phase, 0, 1),
    }
}

/// Level (permille) of the `zone_index`-th of `zone_count` zones in a sweep.
///
/// The peak enters the first zone at phase 0 and leaves the last at the end of the cycle.
pub(crate) fn sweep(phase: u32, zone_index: usize, zone_count: usize) -> u32 {
    let count = zone_count.max(1) as u64;
    // Peak position and zone centre in thousandths of a zone.
    let peak = u64::from(phase % PHASE_ONE) * count * 1000 / u64::from(PHASE_ONE);
    let centre = zone_index as u64 * 1000 + 500;
    let distance = peak.abs_diff(centre);
    if distance >= 1000 {
        0
    } else {
        // distance < 1000 here.
        smoothstep(1000 - distance as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothstep_spans_zero_to_full() {
        assert_eq!(smoothstep(0), 0);
        assert_eq!(smoothstep(500), 500);
        assert_eq!(smoothstep(1000), 1000);
        assert_eq!(smoothstep(5000), 1000);
    }

    #[test]
    fn bump_peaks_at_half_cycle() {
        assert_eq!(bump(0), 0);
        assert_eq!(bump(PHASE_ONE / 2), 1000);
        assert_eq!(bump(PHASE_ONE), 0);
        assert!(bump(PHASE_ONE / 4) > 400 && bump(PHASE_ONE / 4) < 600);
    }

    #[test]
    fn circles_rotate_between_channels() {
        let a = zone_level(Technique::Circles, PHASE_ONE / 2, 0, 2);
        let b = zone_level(Technique::Circles, PHASE_ONE / 2, 1, 2);
        assert_eq!(a, 1000);
        assert_eq!(b, 200);
    }

    #[test]
    fn knead_never_releases() {
        for phase in (0..PHASE_ONE).step_by(97) {
            for index in 0..3 {
                assert!(zone_level(Technique::Knead, phase, index, 3) >= 400);
            }
        }
    }

    #[test]
    fn press_holds_then_releases_fully() {
        assert_eq!(zone_level(Technique::Press, PHASE_ONE / 2, 0, 1), 1000);
        assert_eq!(zone_level(Technique::Press, 0, 0, 1), 0);
    }

    #[test]
    fn sweep_peak_travels_in_order() {
        let at = |phase: u32| -> Vec<u32> { (0..3).map(|z| sweep(phase, z, 3)).collect() };
        let early = at(PHASE_ONE / 6);
        let late = at(PHASE_ONE * 5 / 6);
        assert!(early[0] >= 990, "{early:?}");
        assert_eq!(early[2], 0);
        assert!(late[2] >= 990, "{late:?}");
        assert_eq!(late[0], 0);
    }
}
