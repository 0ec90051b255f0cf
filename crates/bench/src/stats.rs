//! Summaries of repeated timings.

use std::time::Duration;

/// Minimum, median and maximum of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
}

impl Summary {
    /// Summarises `times`; the median of an even count is the mean of the middle two.
    pub fn of(times: &[Duration]) -> Summary {
        let mut sorted = times.to_vec();
        sorted.sort();
        let n = sorted.len();
        if n == 0 {
            return Summary { min: Duration::ZERO, median: Duration::ZERO, max: Duration::ZERO };
        }
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 };
        Summary { min: sorted[0], median, max: sorted[n - 1] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(Summary::of(&[ms(5), ms(1), ms(3)]), Summary { min: ms(1), median: ms(3), max: ms(5) });
        assert_eq!(Summary::of(&[ms(4), ms(1), ms(2), ms(9)]).median, ms(3));
        assert_eq!(Summary::of(&[]).max, Duration::ZERO);
    }
}
