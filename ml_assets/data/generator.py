"""Deterministic card transactions: the demo's source of truth.

Each day is generated from `(seed, day)` alone, so any day can be made on its own and the
same day always yields the same rows. Entities (customers, merchants) come from the seed
only, so their stable attributes hold across days. The generator knows each row's true
fraud probability, which is what lets the evaluation report the best AUC any model could
reach. Fraud depends on things rolling-window features can see: how unusual the amount is
for the customer (their 30-day mean), how many transactions the customer made in the last
hour (compromised cards burst), the merchant category, channel, cross-border and night.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from ml_assets.data.contracts import LABEL_COLUMNS, TRANSACTION_COLUMNS
from ml_assets.data.scenarios import Scenario, apply_scenarios
from ml_assets.settings import Settings

N_CUSTOMERS = 5_000
N_MERCHANTS = 400
COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "NL"])
COUNTRY_WEIGHTS = np.array([0.35, 0.2, 0.15, 0.12, 0.1, 0.08])
CATEGORIES = np.array(
    [
        "grocery",
        "fuel",
        "restaurants",
        "travel",
        "online_retail",
        "electronics",
        "gaming",
        "jewelry",
    ]
)
CATEGORY_WEIGHTS = np.array([0.28, 0.14, 0.2, 0.06, 0.16, 0.07, 0.05, 0.04])
# Logit offsets of fraud by merchant category and the typical ticket size of the category.
CATEGORY_RISK = {
    "grocery": -0.6,
    "fuel": -0.3,
    "restaurants": -0.4,
    "travel": 0.5,
    "online_retail": 0.4,
    "electronics": 1.0,
    "gaming": 1.2,
    "jewelry": 1.4,
    "crypto_exchange": 1.8,
}
CATEGORY_TICKET = np.array([1.0, 1.2, 0.8, 4.0, 1.5, 3.0, 0.7, 5.0])
ONLINE_CATEGORIES = {"online_retail", "gaming", "crypto_exchange"}
CHANNELS = np.array(["card_present", "contactless", "online"])
HOUR_WEIGHTS = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4, 4.2, 4.5, 5, 4.8, 4.4, 4.3, 4.5, 5, 5.2, 4.8,
     4.0, 3.2, 2.2, 1.5]
)  # fmt: skip
WEEKDAY_FACTOR = np.array([0.95, 0.97, 1.0, 1.02, 1.12, 1.15, 0.85])
BASE_LOGIT = -7.0
COMPROMISED_SHARE = 0.004


@dataclass(frozen=True)
class GeneratorConfig:
    """What shapes the generated stream; the same config and day give the same rows."""

    seed: int = 7
    transactions_per_day: int = 20_000
    label_delay_min_days: int = 1
    label_delay_max_days: int = 3
    never_labelled_share: float = 0.03
    scenarios: tuple[Scenario, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        scenarios: tuple[Scenario, ...] = (),
        seed: int | None = None,
        transactions_per_day: int | None = None,
    ) -> GeneratorConfig:
        """The generator the settings describe (the one mapping, for the CLI and the demo);
        `seed` and `transactions_per_day` override the settings when given."""
        return cls(
            seed=settings.seed if seed is None else seed,
            transactions_per_day=transactions_per_day or settings.transactions_per_day,
            label_delay_min_days=settings.label_delay_min_days,
            label_delay_max_days=settings.label_delay_max_days,
            never_labelled_share=settings.never_labelled_share,
            scenarios=scenarios,
        )


@dataclass(frozen=True)
class Entities:
    """Stable attributes of customers and merchants, drawn from the seed alone."""

    customer_ids: np.ndarray
    customer_country: np.ndarray
    customer_typical_amount: np.ndarray
    customer_activity: np.ndarray
    merchant_ids: np.ndarray
    merchant_country: np.ndarray
    merchant_category: np.ndarray
    merchant_category_index: np.ndarray


@lru_cache(maxsize=4)
def make_entities(seed: int) -> Entities:
    rng = np.random.default_rng([seed, 0])
    customer_country = rng.choice(COUNTRIES, size=N_CUSTOMERS, p=COUNTRY_WEIGHTS)
    typical_amount = np.exp(rng.normal(3.4, 0.6, size=N_CUSTOMERS))
    activity = rng.gamma(2.0, 1.0, size=N_CUSTOMERS)
    category_index = rng.choice(len(CATEGORIES), size=N_MERCHANTS, p=CATEGORY_WEIGHTS)
    merchant_country = rng.choice(COUNTRIES, size=N_MERCHANTS, p=COUNTRY_WEIGHTS)
    return Entities(
        customer_ids=np.array([f"C{i:05d}" for i in range(N_CUSTOMERS)]),
        customer_country=customer_country,
        customer_typical_amount=typical_amount,
        customer_activity=activity / activity.sum(),
        merchant_ids=np.array([f"M{i:04d}" for i in range(N_MERCHANTS)]),
        merchant_country=merchant_country,
        merchant_category=CATEGORIES[category_index],
        merchant_category_index=category_index,
    )


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _prior_count_within(keys: np.ndarray, seconds: np.ndarray, window: int) -> np.ndarray:
    """For rows sorted by (key, seconds): how many earlier rows of the same key lie in
    [t - window, t). Used for the velocity that drives fraud."""
    composite = keys.astype(np.int64) * 1_000_000 + seconds
    first_in_window = np.searchsorted(composite, composite - window, side="left")
    first_at_t = np.searchsorted(composite, composite, side="left")
    return first_at_t - first_in_window


def fraud_logit(
    amount_ratio: np.ndarray,
    category: np.ndarray,
    channel: np.ndarray,
    cross_border: np.ndarray,
    hour: np.ndarray,
    prior_1h: np.ndarray,
) -> np.ndarray:
    """The true fraud log-odds of a transaction from what features can observe."""
    category_risk = np.vectorize(CATEGORY_RISK.get, otypes=[float])(category)
    return (
        BASE_LOGIT
        + 1.3 * np.clip(np.log(amount_ratio), -1.0, 3.0)
        + category_risk
        + 0.9 * (channel == "online")
        + 1.1 * cross_border
        + 0.8 * (hour < 5)
        + 0.7 * np.minimum(prior_1h, 5)
    )


def _draw_transactions(day: date, config: GeneratorConfig, entities: Entities) -> pl.DataFrame:
    rng = np.random.default_rng([config.seed, day.toordinal()])
    n_normal = rng.poisson(config.transactions_per_day * WEEKDAY_FACTOR[day.weekday()])
    customers = rng.choice(N_CUSTOMERS, size=n_normal, p=entities.customer_activity)
    hours = rng.choice(24, size=n_normal, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, size=n_normal)
    home = rng.random(n_normal) < 0.9
    merchants = rng.integers(0, N_MERCHANTS, size=n_normal)
    # Most spending happens at home: re-draw a home-country merchant for those rows.
    same_country = entities.merchant_country[merchants] == entities.customer_country[customers]
    redraw = home & ~same_country
    for _ in range(3):
        merchants[redraw] = rng.integers(0, N_MERCHANTS, size=int(redraw.sum()))
        same_country = entities.merchant_country[merchants] == entities.customer_country[customers]
        redraw = redraw & ~same_country
    ticket = CATEGORY_TICKET[entities.merchant_category_index[merchants]]
    amounts = (
        entities.customer_typical_amount[customers] * ticket * rng.lognormal(0, 0.45, n_normal)
    )

    # Compromised cards: a short burst of large online spending at risky merchants.
    n_compromised = rng.binomial(N_CUSTOMERS, COMPROMISED_SHARE)
    victims = rng.choice(N_CUSTOMERS, size=n_compromised, replace=False)
    burst_sizes = rng.integers(3, 9, size=n_compromised)
    burst_customers = np.repeat(victims, burst_sizes)
    burst_start = np.repeat(rng.integers(0, 86_400 - 3_600, size=n_compromised), burst_sizes)
    burst_seconds = burst_start + rng.integers(0, 2_400, size=burst_customers.size)
    risky = np.flatnonzero(entities.merchant_category_index >= 4)
    burst_merchants = rng.choice(risky, size=burst_customers.size)
    burst_amounts = entities.customer_typical_amount[burst_customers] * rng.uniform(
        2.0, 8.0, burst_customers.size
    )

    customers = np.concatenate([customers, burst_customers])
    merchants = np.concatenate([merchants, burst_merchants])
    seconds = np.concatenate([seconds, burst_seconds])
    amounts = np.round(np.concatenate([amounts, burst_amounts]), 2)
    categories = entities.merchant_category[merchants]
    n = customers.size

    online = np.isin(categories, list(ONLINE_CATEGORIES)) | (rng.random(n) < 0.15)
    online[n_normal:] = rng.random(n - n_normal) < 0.85
    channel = np.where(online, "online", CHANNELS[rng.integers(0, 2, size=n)])
    device = np.where(
        online,
        np.where(rng.random(n) < 0.6, "mobile", "desktop"),
        np.where(
            channel == "contactless",
            np.where(rng.random(n) < 0.5, "mobile", "terminal"),
            "terminal",
        ),
    )

    order = np.lexsort((seconds, customers))
    customers, merchants, seconds = customers[order], merchants[order], seconds[order]
    amounts, categories, channel, device = (
        amounts[order],
        categories[order],
        channel[order],
        device[order],
    )
    prior_1h = _prior_count_within(customers, seconds, 3_600)
    cross_border = entities.merchant_country[merchants] != entities.customer_country[customers]
    logit = fraud_logit(
        amounts / entities.customer_typical_amount[customers],
        categories,
        channel,
        cross_border,
        seconds // 3600,
        prior_1h,
    )
    probability = 1.0 / (1.0 + np.exp(-logit))
    is_fraud = (rng.random(n) < probability).astype(np.int8)
    delays = rng.integers(config.label_delay_min_days, config.label_delay_max_days + 1, size=n)
    delays[rng.random(n) < config.never_labelled_share] = -1
    label_seconds = rng.integers(0, 86_400, size=n)

    by_time = np.lexsort((customers, seconds))
    start = _day_start(day)
    frame = pl.DataFrame(
        {
            "transaction_id": [f"T{day:%Y%m%d}-{i:06d}" for i in range(n)],
            "event_time": pl.from_epoch(
                pl.Series(int(start.timestamp()) + seconds[by_time]), time_unit="s"
            ).dt.replace_time_zone("UTC"),
            "customer_id": entities.customer_ids[customers[by_time]],
            "merchant_id": entities.merchant_ids[merchants[by_time]],
            "merchant_category": categories[by_time],
            "merchant_country": entities.merchant_country[merchants[by_time]],
            "customer_country": entities.customer_country[customers[by_time]],
            "amount": amounts[by_time],
            "channel": channel[by_time],
            "device": device[by_time],
            "true_fraud_probability": probability[by_time],
            "_is_fraud": is_fraud[by_time],
            "_label_delay_days": delays[by_time],
            "_label_second": label_seconds[by_time],
        }
    )
    return frame.with_columns(pl.col("event_time").dt.cast_time_unit("us"))


def _generate_with_truth(day: date, config: GeneratorConfig) -> pl.DataFrame:
    entities = make_entities(config.seed)
    frame = _draw_transactions(day, config, entities)
    return apply_scenarios(frame, day, config.scenarios, config.seed)


def generate_transactions(day: date, config: GeneratorConfig | None = None) -> pl.DataFrame:
    """The transactions of one day, in landing-file shape (no label columns)."""
    config = config or GeneratorConfig()
    return _generate_with_truth(day, config).select(TRANSACTION_COLUMNS)


def generate_labels(day: date, config: GeneratorConfig | None = None) -> pl.DataFrame:
    """The labels that become known on `day`: fraud outcomes of earlier days' transactions
    whose delay ends today. Some transactions are never labelled."""
    config = config or GeneratorConfig()
    frames = []
    for delay in range(config.label_delay_min_days, config.label_delay_max_days + 1):
        origin = _generate_with_truth(day - timedelta(days=delay), config)
        frames.append(origin.filter(pl.col("_label_delay_days") == delay))
    arrived = pl.concat(frames)
    start = _day_start(day)
    return (
        arrived.with_columns(
            label_time=pl.lit(start) + pl.duration(seconds=pl.col("_label_second")),
            is_fraud=pl.col("_is_fraud"),
        )
        .with_columns(pl.col("label_time").dt.cast_time_unit("us"))
        .select(LABEL_COLUMNS)
        .sort("label_time", "transaction_id")
    )
