//! Line arithmetic in integer minor units: quantity × price, less the line's discount, with
//! tax added (prices without tax) or taken out (prices with tax), rounded once, by the
//! clinic's rule. Nothing here is a float.

use serde::{Deserialize, Serialize};
use specta::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Halves away from zero (0.5 → 1).
    #[default]
    HalfUp,
    /// Halves to the even neighbour (0.5 → 0, 1.5 → 2): banker's rounding.
    HalfEven,
}

/// `num / den` rounded to a whole number by `mode` (`den` > 0).
pub fn div_round(num: i128, den: i128, mode: Rounding) -> i128 {
    debug_assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    // r/den in [0, 1): compare 2r with den.
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => match mode {
            // Away from zero: for a negative value the floor is already away from zero.
            Rounding::HalfUp => {
                if num < 0 {
                    q
                } else {
                    q + 1
                }
            }
            Rounding::HalfEven => {
                if q % 2 == 0 {
                    q
                } else {
                    q + 1
                }
            }
        },
    }
}

/// What a line comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct LineAmounts {
    /// Quantity × unit price.
    pub gross: i64,
    pub discount: i64,
    /// Before tax.
    pub net: i64,
    pub tax: i64,
    /// What the patient is charged: net + tax.
    pub total: i64,
}

/// The amounts of a line. With `prices_include_tax`, the tax is the part of the discounted
/// amount that `rate_bp` (basis points) makes up; otherwise it is added on top.
pub fn line(
    quantity: i64,
    unit_price: i64,
    discount: i64,
    rate_bp: i64,
    prices_include_tax: bool,
    mode: Rounding,
) -> LineAmounts {
    let gross = quantity as i128 * unit_price as i128;
    let after = gross - discount as i128;
    let (net, tax) = if prices_include_tax {
        let tax = div_round(after * rate_bp as i128, 10_000 + rate_bp as i128, mode);
        (after - tax, tax)
    } else {
        (after, div_round(after * rate_bp as i128, 10_000, mode))
    };
    LineAmounts {
        gross: gross as i64,
        discount,
        net: net as i64,
        tax: tax as i64,
        total: (net + tax) as i64,
    }
}

/// A share of an amount in basis points, rounded by `mode`.
pub fn share(amount: i64, bp: i64, mode: Rounding) -> i64 {
    div_round(amount as i128 * bp as i128, 10_000, mode) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_go_up_or_to_even() {
        use Rounding::*;
        for (num, den, up, even) in [
            (5, 10, 1, 0),
            (15, 10, 2, 2),
            (25, 10, 3, 2),
            (-5, 10, -1, 0),
            (-15, 10, -2, -2),
            (14, 10, 1, 1),
            (16, 10, 2, 2),
            (0, 7, 0, 0),
        ] {
            assert_eq!(div_round(num, den, HalfUp), up, "{num}/{den} half up");
            assert_eq!(div_round(num, den, HalfEven), even, "{num}/{den} half even");
        }
    }

    #[test]
    fn tax_on_top_or_inside() {
        // 3 × 10.50 with 7 % VAT on top: 31.50 + 2.205 → 2.21 (half up), 2.20 (half even).
        let l = line(3, 1050, 0, 700, false, Rounding::HalfUp);
        assert_eq!((l.net, l.tax, l.total), (3150, 221, 3371));
        let l = line(3, 1050, 0, 700, false, Rounding::HalfEven);
        assert_eq!(l.tax, 220);
        // 107.00 with 7 % inside: 7.00 of it is tax.
        let l = line(1, 10_700, 0, 700, true, Rounding::HalfUp);
        assert_eq!((l.net, l.tax, l.total), (10_000, 700, 10_700));
        // A discount comes off before tax.
        let l = line(2, 5000, 1000, 1000, false, Rounding::HalfUp);
        assert_eq!((l.gross, l.net, l.tax, l.total), (10_000, 9000, 900, 9900));
    }

    /// Any line: net + tax = total, total = gross − discount (+ tax on top), and the tax is
    /// within half a minor unit of the exact rate.
    #[test]
    fn lines_always_add_up() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200_000 {
            let q = 1 + next(1000) as i64;
            let p = next(10_000_000) as i64;
            let gross = q * p;
            let d = if gross > 0 {
                next(gross as u64 + 1) as i64
            } else {
                0
            };
            let rate = next(3000) as i64;
            let incl = next(2) == 0;
            let mode = if next(2) == 0 {
                Rounding::HalfUp
            } else {
                Rounding::HalfEven
            };
            let l = line(q, p, d, rate, incl, mode);
            assert_eq!(l.net + l.tax, l.total);
            assert_eq!(l.gross, gross);
            let base = (gross - d) as i128;
            if incl {
                assert_eq!(l.total as i128, base);
                let exact = base * rate as i128 * 2;
                let got = l.tax as i128 * 2 * (10_000 + rate as i128);
                assert!(
                    (exact - got).abs() <= 10_000 + rate as i128,
                    "{q} {p} {d} {rate}"
                );
            } else {
                assert_eq!(l.net as i128, base);
                let exact = base * rate as i128 * 2;
                let got = l.tax as i128 * 2 * 10_000;
                assert!((exact - got).abs() <= 10_000, "{q} {p} {d} {rate}");
            }
        }
    }
}
