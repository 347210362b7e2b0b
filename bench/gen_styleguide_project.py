#!/usr/bin/env python3
"""Generate a large dbt project in the dbt style guide's idiom (like fixtures/styleguide), for benchmarking the column
model (column_lineage, analyze_changes, project_check) at scale.

    .venv/bin/python bench/gen_styleguide_project.py OUT_DIR --models 1000 --seed 7
    cd OUT_DIR && /work/main/.venv/bin/dbt build --profiles-dir .

What it writes (deterministic for a seed):
- five seeds (small, wide CSVs: customers, orders, payments, products, stores) in schema `raw`;
- a source `raw` (models/staging/_sources.yml) over the tables the seeds load;
- ~10 % staging models, `stg_<system>__<entity>`: `with source as (select * from {{ ref(seed) }}), renamed as (...renames,
  casts, cents_to_dollars...) select * from renamed` (views); every other system's models read `{{ source('raw', seed) }}`
  instead, with a `-- depends_on: {{ ref(seed) }}` line so that one `dbt build` loads the seed first;
- intermediate (`int_…`, tables) and marts (`fct_…`/`dim_…`, tables) models, each reading 1-4 upstream models through
  import CTEs, with logical CTEs (case blocks, window functions, group-by roll-ups, left joins), a `final` CTE with an
  explicit column list and `select * from final`; some generate columns with a Jinja loop, some start from the project's
  `star_except` macro (copied from fixtures/styleguide/macros with the rest of its macros);
- one YAML file per folder: descriptions, and unique + not_null on each model's key;
- `bench_hints.json`: a staging column that reaches a mart within 3 model hops (what bench_columns.py traces), and the
  one-line edit that renames it.

Intermediate models are tables, not views as in the fixture: DuckDB inlines views, and a deep DAG of views joining each
other expands into a plan exponential in the depth.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "styleguide"
PROJECT = "styleguide_bench"

SYSTEMS = ["web", "app", "pos", "erp", "crm", "legacy", "partner", "wholesale", "marketplace", "kiosk", "callcenter",
           "subscription", "b2b", "outlet", "popup", "catalog", "affiliate", "social", "email", "events"]
ENTITIES = ["customer", "order", "payment", "product", "store"]
PLURAL = {e: e + "s" for e in ENTITIES}
GRAIN_WEIGHTS = {"order": 35, "customer": 25, "payment": 15, "product": 12, "store": 13}
MART_DOMAIN = {"order": "sales", "payment": "finance", "customer": "marketing", "product": "product", "store": "operations"}
MART_PREFIX = {"order": "fct", "payment": "fct", "customer": "dim", "product": "dim", "store": "dim"}
MIN_LINES = 50
INT_VERBS = ["enriched", "joined", "scored", "rolled_up", "bucketed", "ranked", "windowed", "pivoted", "summarised", "flagged"]
MART_NOUNS = ["overview", "daily", "summary", "history", "detail", "performance", "health", "activity", "profile", "report"]

STATUS = ("placed", "shipped", "completed", "return_pending", "returned")
CHANNEL = ("web", "app", "store", "phone")
TIER = ("bronze", "silver", "gold", "platinum")
COUNTRY = ("US", "DE", "FR", "GB", "NL", "ES")
METHOD = ("credit_card", "coupon", "bank_transfer", "gift_card")
CURRENCY = ("USD", "EUR", "GBP")
BRAND = ("visa", "mastercard", "amex", "none")
PROCESSOR = ("stripe", "adyen", "paypal")
PAY_STATUS = ("succeeded", "failed", "pending")
CATEGORY = ("jaffles", "drinks", "sides", "desserts", "merch")
SUPPLIER = ("acme", "globex", "initech", "umbrella")
COLOR = ("red", "green", "blue", "black", "white")
REGION = ("north", "south", "east", "west")
CITIES = ("Philadelphia", "Brooklyn", "Chicago", "San Francisco", "New Orleans", "Los Angeles", "Austin", "Seattle")
FIRST = ("Michael", "Shawn", "Kathleen", "Jimmy", "Katherine", "Sarah", "Martin", "Frank", "Jennifer", "Henry", "Fred",
         "Amy", "Kathleen", "Steve", "Teresa", "Amanda", "Kimberly", "Johnny", "Virginia", "Anna")
LAST = ("P.", "M.", "R.", "C.", "W.", "H.", "D.", "G.", "S.", "K.", "F.", "L.", "B.", "T.", "N.")


# --------------------------------------------------------------------------- seeds


@dataclass(frozen=True)
class RawCol:
    """A seed column and how staging models stage it."""

    raw: str
    seed_type: str  # dbt column_types
    out: tuple[str, ...]  # staged output name(s) to choose from
    kind: str  # key, fk:<entity>, int, num, text, cat, date, bool
    cats: tuple[str, ...] = ()
    stage: str = "{raw}"  # expression template
    optional: bool = False
    doc: str = ""


SEEDS: dict[str, tuple[str, list[RawCol]]] = {
    "customer": ("raw_customers", [
        RawCol("id", "integer", ("customer_id",), "key", doc="Primary key of the customer."),
        RawCol("home_store_id", "integer", ("store_id",), "fk:store", doc="The customer's home store."),
        RawCol("first_name", "varchar", ("first_name",), "text", doc="Customer first name."),
        RawCol("last_name", "varchar", ("last_name",), "text", doc="Customer last name."),
        RawCol("email", "varchar", ("email",), "text", stage="lower({raw})", doc="Customer e-mail address, lower case."),
        RawCol("phone", "varchar", ("phone", "phone_number"), "text", optional=True, doc="Customer phone number."),
        RawCol("city", "varchar", ("city", "customer_city"), "text", doc="City the customer lives in."),
        RawCol("tier", "varchar", ("tier", "loyalty_tier"), "cat", TIER, doc="Loyalty tier."),
        RawCol("country_code", "varchar", ("country_code",), "cat", COUNTRY, stage="upper({raw})", doc="ISO country code."),
        RawCol("marketing_opt_in", "boolean", ("is_marketing_opt_in",), "bool", doc="True when the customer accepts marketing e-mail."),
        RawCol("referral_code", "varchar", ("referral_code",), "text", stage="coalesce({raw}, 'none')", optional=True, doc="Referral code used at sign-up, 'none' when none."),
        RawCol("loyalty_points", "integer", ("loyalty_points",), "int", doc="Loyalty points balance."),
        RawCol("lifetime_discount_cents", "integer", ("lifetime_discount", "lifetime_discount_amount"), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Discounts granted over the customer's lifetime, in dollars."),
        RawCol("signup_date", "date", ("signed_up_at", "signup_date"), "date", stage="cast({raw} as date)", doc="Date the customer signed up."),
        RawCol("birth_date", "date", ("birth_date", "born_on"), "date", optional=True, doc="Customer birth date."),
        RawCol("updated_at", "date", ("updated_at",), "date", doc="Date the record last changed."),
    ]),
    "order": ("raw_orders", [
        RawCol("id", "integer", ("order_id",), "key", doc="Primary key of the order."),
        RawCol("user_id", "integer", ("customer_id",), "fk:customer", doc="The customer who placed the order."),
        RawCol("store_id", "integer", ("store_id",), "fk:store", doc="The store that took the order."),
        RawCol("product_id", "integer", ("product_id",), "fk:product", doc="The product ordered."),
        RawCol("status", "varchar", ("status", "order_status"), "cat", STATUS, doc="Order status."),
        RawCol("channel", "varchar", ("channel", "sales_channel"), "cat", CHANNEL, stage="lower({raw})", doc="Sales channel."),
        RawCol("coupon_code", "varchar", ("coupon_code",), "text", stage="coalesce({raw}, 'none')", optional=True, doc="Coupon code used, 'none' when none."),
        RawCol("quantity", "integer", ("quantity", "item_count"), "int", doc="Number of items ordered."),
        RawCol("unit_price_cents", "integer", ("unit_price",), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Price of one item, in dollars."),
        RawCol("discount_cents", "integer", ("discount_amount",), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Discount granted, in dollars."),
        RawCol("tax_cents", "integer", ("tax_amount",), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", optional=True, doc="Tax charged, in dollars."),
        RawCol("shipping_cents", "integer", ("shipping_amount", "shipping_fee"), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Shipping charged, in dollars."),
        RawCol("is_gift", "boolean", ("is_gift",), "bool", doc="True when the order is a gift."),
        RawCol("order_date", "date", ("ordered_at", "order_date"), "date", stage="cast({raw} as date)", doc="Date the order was placed."),
        RawCol("shipped_date", "date", ("shipped_at", "shipped_date"), "date", stage="cast({raw} as date)", doc="Date the order shipped, null before."),
        RawCol("updated_at", "date", ("updated_at",), "date", doc="Date the record last changed."),
    ]),
    "payment": ("raw_payments", [
        RawCol("id", "integer", ("payment_id",), "key", doc="Primary key of the payment."),
        RawCol("order_id", "integer", ("order_id",), "fk:order", doc="The order this payment pays for."),
        RawCol("payment_method", "varchar", ("payment_method",), "cat", METHOD, doc="How the payment was made."),
        RawCol("currency", "varchar", ("currency", "currency_code"), "cat", CURRENCY, stage="upper({raw})", doc="Currency of the payment."),
        RawCol("card_brand", "varchar", ("card_brand",), "cat", BRAND, optional=True, doc="Card brand, 'none' for other methods."),
        RawCol("processor", "varchar", ("processor", "payment_processor"), "cat", PROCESSOR, doc="Payment processor."),
        RawCol("status", "varchar", ("payment_status",), "cat", PAY_STATUS, doc="Payment status."),
        RawCol("installments", "integer", ("installments", "installment_count"), "int", optional=True, doc="Number of installments."),
        RawCol("amount", "integer", ("amount", "payment_amount"), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Amount paid, in dollars."),
        RawCol("fee_cents", "integer", ("fee_amount", "processing_fee"), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Processor fee, in dollars."),
        RawCol("is_refunded", "boolean", ("is_refunded",), "bool", doc="True when the payment was refunded."),
        RawCol("paid_at", "date", ("paid_at", "payment_date"), "date", stage="cast({raw} as date)", doc="Date the payment was made."),
        RawCol("updated_at", "date", ("updated_at",), "date", optional=True, doc="Date the record last changed."),
    ]),
    "product": ("raw_products", [
        RawCol("id", "integer", ("product_id",), "key", doc="Primary key of the product."),
        RawCol("sku", "varchar", ("sku", "product_sku"), "text", stage="upper({raw})", doc="Stock keeping unit."),
        RawCol("product_name", "varchar", ("product_name",), "text", doc="Product name."),
        RawCol("category", "varchar", ("category", "product_category"), "cat", CATEGORY, doc="Product category."),
        RawCol("subcategory", "varchar", ("subcategory",), "text", optional=True, doc="Product subcategory."),
        RawCol("supplier", "varchar", ("supplier", "supplier_name"), "cat", SUPPLIER, doc="Supplier."),
        RawCol("color", "varchar", ("color",), "cat", COLOR, optional=True, doc="Main colour."),
        RawCol("price_cents", "integer", ("price", "list_price"), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="List price, in dollars."),
        RawCol("cost_cents", "integer", ("cost", "unit_cost"), "num", stage="{{{{ cents_to_dollars('{raw}') }}}}", doc="Unit cost, in dollars."),
        RawCol("weight_grams", "integer", ("weight_grams",), "int", doc="Shipping weight in grams."),
        RawCol("is_active", "boolean", ("is_active",), "bool", doc="True when the product is on sale."),
        RawCol("launched_on", "date", ("launched_on", "launch_date"), "date", stage="cast({raw} as date)", doc="Date the product launched."),
    ]),
    "store": ("raw_stores", [
        RawCol("id", "integer", ("store_id",), "key", doc="Primary key of the store."),
        RawCol("store_name", "varchar", ("store_name",), "text", doc="Store name."),
        RawCol("city", "varchar", ("store_city", "city"), "text", doc="City of the store."),
        RawCol("region", "varchar", ("region", "sales_region"), "cat", REGION, doc="Sales region."),
        RawCol("manager_name", "varchar", ("manager_name",), "text", optional=True, doc="Store manager."),
        RawCol("postal_code", "varchar", ("postal_code", "zip_code"), "text", doc="Postal code of the store."),
        RawCol("phone", "varchar", ("phone", "store_phone"), "text", optional=True, doc="Store phone number."),
        RawCol("square_meters", "integer", ("square_meters", "floor_area"), "int", doc="Floor area in square meters."),
        RawCol("employees", "integer", ("employees", "headcount"), "int", doc="Number of employees."),
        RawCol("seating_capacity", "integer", ("seating_capacity", "seats"), "int", doc="Number of seats."),
        RawCol("tax_rate", "decimal(6,4)", ("tax_rate",), "num", doc="Sales tax rate."),
        RawCol("is_flagship", "boolean", ("is_flagship",), "bool", doc="True for flagship stores."),
        RawCol("has_drive_through", "boolean", ("has_drive_through",), "bool", doc="True when the store has a drive-through."),
        RawCol("opened_on", "date", ("opened_on", "opened_at"), "date", stage="cast({raw} as date)", doc="Date the store opened."),
        RawCol("updated_at", "date", ("updated_at",), "date", doc="Date the record last changed."),
    ]),
}
ROWS = {"customer": 60, "order": 300, "payment": 420, "product": 40, "store": 10}


def seed_rows(entity: str, rng: random.Random) -> list[list[str]]:
    """Deterministic rows of one seed; every foreign key points at an existing row."""
    day0 = date(2024, 1, 1)

    def day(span: int = 600) -> str:
        return (day0 + timedelta(days=rng.randrange(span))).isoformat()

    out = []
    for i in range(1, ROWS[entity] + 1):
        if entity == "customer":
            first, last = rng.choice(FIRST), rng.choice(LAST)
            cc = rng.choice(COUNTRY)
            out.append([i, rng.randint(1, ROWS["store"]), first, last, f"{first.lower()}{i}@example.{cc.lower()}", f"+1-555-{1000 + i}",
                        rng.choice(CITIES), rng.choice(TIER), cc.lower(), rng.choice(["true", "false"]),
                        rng.choice(["", "", "FRIEND10", "SPRING"]), rng.randint(0, 5000), rng.randint(0, 20000), day(300), f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", day()])
        elif entity == "order":
            status = rng.choice(STATUS)
            ordered = day0 + timedelta(days=rng.randrange(500))
            shipped = "" if status == "placed" else (ordered + timedelta(days=rng.randint(1, 6))).isoformat()
            out.append([i, rng.randint(1, ROWS["customer"]), rng.randint(1, ROWS["store"]), rng.randint(1, ROWS["product"]), status,
                        rng.choice(CHANNEL).upper(), rng.choice(["", "", "", "SAVE5", "WELCOME"]), rng.randint(1, 6), rng.randint(200, 4000),
                        rng.choice([0, 0, 100, 250]), rng.randint(0, 400), rng.choice([0, 499, 999]), rng.choice(["true", "false"]),
                        ordered.isoformat(), shipped, day()])
        elif entity == "payment":
            method = rng.choice(METHOD)
            out.append([i, rng.randint(1, ROWS["order"]), method, rng.choice(CURRENCY).lower(), rng.choice(BRAND) if method == "credit_card" else "none",
                        rng.choice(PROCESSOR), rng.choice(PAY_STATUS), rng.randint(1, 12), rng.randint(100, 9000), rng.randint(0, 300),
                        rng.choice(["false", "false", "true"]), day(), day()])
        elif entity == "product":
            out.append([i, f"sku-{i:04d}", f"Product {i}", rng.choice(CATEGORY), f"sub {rng.randint(1, 8)}", rng.choice(SUPPLIER), rng.choice(COLOR),
                        rng.randint(200, 5000), rng.randint(50, 2000), rng.randint(50, 3000), rng.choice(["true", "true", "false"]), day(400)])
        else:
            out.append([i, f"Jaffle {CITIES[(i - 1) % len(CITIES)]} {i}", CITIES[(i - 1) % len(CITIES)], rng.choice(REGION), rng.choice(FIRST),
                        f"{rng.randint(10000, 99999)}", f"+1-555-{2000 + i}", rng.randint(80, 900), rng.randint(4, 60), rng.randint(10, 120),
                        f"0.{rng.randint(400, 999):04d}", rng.choice(["true", "false"]), rng.choice(["true", "false"]), day(200), day()])
    return [[str(v) for v in row] for row in out]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Col:
    name: str
    kind: str
    cats: tuple[str, ...] = ()
    src: tuple[tuple[str, str], ...] = ()  # (parent node, column) it is computed from
    doc: str = ""


@dataclass
class Item:
    """A select-list entry: SQL lines (no trailing comma unless a Jinja loop, whose lines carry their own commas)."""

    lines: list[str]
    cols: list[Col]
    loop: bool = False


@dataclass
class Model:
    name: str
    layer: str
    folder: str
    grain: str
    cols: list[Col]
    parents: list[str]
    sql: str
    description: str
    undocumented: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.grain + "_id"


def render_items(items: list[Item], indent: str = "        ") -> list[str]:
    assert items and not items[-1].loop, "a Jinja loop must be followed by a plain column"
    out: list[str] = []
    for i, item in enumerate(items):
        lines = [indent + line if line else "" for line in item.lines]
        if not item.loop and i < len(items) - 1:
            lines[-1] += ","
        out += lines
    return out


def cte(name: str, body: list[str]) -> list[str]:
    return [f"{name} as (", "", *body, "", ")"]


def import_cte(alias: str, ref: str) -> list[str]:
    return cte(alias, [f"    select * from {{{{ ref('{ref}') }}}}"])


def join_ctes(ctes: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, c in enumerate(ctes):
        block = list(c)
        if i < len(ctes) - 1:
            block[-1] += ","
        out += block + ([""] if i < len(ctes) - 1 else [])
    out[0] = "with " + out[0]
    return out


class Namer:
    """Output names unique within one model: a clash gets the model's number, then a counter."""

    def __init__(self, taken: list[str], tag: int) -> None:
        self.taken = {t.lower() for t in taken}
        self.tag = tag

    def free(self, name: str) -> bool:
        return name.lower() not in self.taken

    def take(self, base: str) -> str:
        name = base if self.free(base) else f"{base}_{self.tag}"
        n = 2
        while not self.free(name):
            name, n = f"{base}_{self.tag}_{n}", n + 1
        self.taken.add(name.lower())
        return name


def staging_model(entity: str, system: str, rng: random.Random, from_source: bool = False) -> tuple[Model, dict[str, str]]:
    """(model, {output column: its line in the file}) of one staging model over the entity's seed: through `ref(seed)`,
    or with from_source through `source('raw', seed)` (the table the seed loads into schema `raw`, as a loader would)."""
    seed, raw_cols = SEEDS[entity]
    name = f"stg_{system}__{PLURAL[entity]}"
    groups: dict[str, list[Item]] = {"ids": [], "strings": [], "numerics": [], "booleans": [], "dates": []}
    group_of = {"key": "ids", "fk": "ids", "text": "strings", "cat": "strings", "int": "numerics", "num": "numerics", "bool": "booleans", "date": "dates"}
    cols: list[Col] = []
    for rc in raw_cols:
        if rc.optional and rng.random() < 0.3:
            continue
        out = rng.choice(rc.out)
        expr = rc.stage.format(raw=rc.raw)
        line = expr if (expr == out) else f"{expr} as {out}"
        col = Col(out, rc.kind, rc.cats, ((f"seed.{PROJECT}.{seed}", rc.raw),), rc.doc)
        groups[group_of[rc.kind.split(":")[0]]].append(Item([line], [col]))
        cols.append(col)
    if entity == "order":
        status = next(c for c in cols if c.kind == "cat" and c.cats == STATUS)
        returned = Col("is_returned", "bool", (), status.src, "True when the order is returned or a return is pending.")
        groups["booleans"].append(Item([f"{status.src[0][1]} in ('return_pending', 'returned') as is_returned"], [returned]))
    items: list[Item] = []
    body: list[str] = []
    ordered: list[Col] = []
    flat = [(g, it) for g, its in groups.items() for it in its]
    for i, (g, it) in enumerate(flat):
        if i == 0 or flat[i - 1][0] != g:
            if i:
                body.append("")
            body.append(f"        ---------- {g}")
        line = "        " + it.lines[0] + ("," if i < len(flat) - 1 else "")
        body.append(line)
        ordered += it.cols
        items.append(it)
    lines_by_col = {it.cols[0].name: "        " + it.lines[0] for it in items}
    renamed = [c for c in ordered if c.name != c.src[0][1]]
    header = [
        "{#-",
        f"    {name}: {PLURAL[entity]} as the {system} system exports them, one row per {entity}.",
        "",
        f"    Grain: one row per {entity} ({entity}_id); {len(ordered)} columns.",
        "",
        (f"    Reads the `raw.{seed}` source, converts amounts in cents to dollars and casts" if from_source else
         f"    Reads the `{seed}` seed, converts amounts in cents to dollars and casts"),
        "    dates. No joins, no filters: staging models stay one-to-one with their source.",
        "",
        "    Renamed columns:",
        *[f"      {c.src[0][1]:<24} -> {c.name}" for c in renamed],
        "-#}",
    ]
    # a source has no parent in dbt's DAG: depends_on orders the view after the seed that loads its table
    sql = header + ([f"-- depends_on: {{{{ ref('{seed}') }}}}", ""] if from_source else []) + join_ctes([
        cte("source", [f"    select * from {{{{ source('raw', '{seed}') }}}}"]) if from_source else import_cte("source", seed),
        cte("renamed", ["    select", "", *body, "", "    from source"]),
    ]) + ["", "select * from renamed", ""]
    model = Model(name, "staging", f"staging/{system}", entity, ordered, [f"seed.{PROJECT}.{seed}"], "\n".join(sql),
                  f"{PLURAL[entity].capitalize()} from the {system} system, one row per {entity}, renamed and cast from the `{seed}` seed.")
    return model, lines_by_col


class Generator:
    def __init__(self, n_models: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = n_models
        self.models: dict[str, Model] = {}
        self.by_grain: dict[str, list[str]] = {e: [] for e in ENTITIES}
        self.staging_lines: dict[str, dict[str, str]] = {}

    def pick(self, names: list[str]) -> str:
        return self.rng.choice(names[-20:]) if self.rng.random() < 0.5 else self.rng.choice(names)

    def upstream_pool(self, layer: str, grain: str) -> list[str]:
        names = self.by_grain[grain]
        allowed = {"intermediate": ("staging", "intermediate"), "marts": ("intermediate", "marts")}[layer]
        pool = [n for n in names if self.models[n].layer in allowed]
        if layer == "marts" and (not pool or self.rng.random() < 0.1):
            pool = [n for n in names if self.models[n].layer == "staging"] or pool
        return pool or names

    def generate(self) -> None:
        n_stg = max(len(ENTITIES), round(self.n * 0.1))
        for i in range(n_stg):
            entity = ENTITIES[i % len(ENTITIES)]
            k = i // len(ENTITIES)
            system = SYSTEMS[k % len(SYSTEMS)] + (str(k // len(SYSTEMS) + 1) if k >= len(SYSTEMS) else "")
            model, lines = staging_model(entity, system, self.rng, from_source=k % 2 == 1)
            self.add(model)
            self.staging_lines[model.name] = lines
        rest = self.n - n_stg
        n_int = rest // 2
        grains = list(GRAIN_WEIGHTS)
        weights = list(GRAIN_WEIGHTS.values())
        for j in range(rest):
            layer = "intermediate" if j < n_int else "marts"
            grain = self.rng.choices(grains, weights)[0]
            for extra in range(0, 12, 2):  # real models are long: at least MIN_LINES lines
                model = self.logical_model(layer, grain, n_stg + j, extra)
                if model.sql.count("\n") >= MIN_LINES:
                    break
            self.add(model)

    def add(self, model: Model) -> None:
        assert model.name not in self.models
        self.models[model.name] = model
        self.by_grain[model.grain].append(model.name)

    # -- one intermediate or mart model

    def logical_model(self, layer: str, grain: str, number: int, extra: int = 0) -> Model:
        rng = self.rng
        key = grain + "_id"
        if layer == "intermediate":
            name = f"int_{PLURAL[grain]}__{rng.choice(INT_VERBS)}_{number:04d}"
            folder = f"intermediate/{PLURAL[grain]}"
        else:
            name = f"{MART_PREFIX[grain]}_{PLURAL[grain]}_{rng.choice(MART_NOUNS)}_{number:04d}"
            folder = f"marts/{MART_DOMAIN[grain]}"
        primary = self.pick(self.upstream_pool(layer, grain))
        p_cols = self.models[primary].cols
        aliases = {PLURAL[grain]}
        imports = [(PLURAL[grain], primary)]
        set_lines: list[str] = []

        def alias_for(base: str) -> str:
            a, n = base, 2
            while a in aliases or a in ("base", "joined", "scored", "final", "source", "renamed"):
                a, n = f"{base}_{n}", n + 1
            aliases.add(a)
            return a

        p_alias = PLURAL[grain]
        # -- base: the primary's columns (explicit, or through star_except) plus derived columns
        fks = [c for c in p_cols if c.kind.startswith("fk:") or c.kind == "key"]
        others = [c for c in p_cols if c not in fks]
        use_star = rng.random() < 0.15 and len(others) >= 3
        items: list[Item] = []
        if use_star:
            dropped = rng.sample(others, rng.randint(1, 2))
            kept = [c for c in p_cols if c not in dropped]
            quoted = ", ".join(f"'{c.name}'" for c in dropped)
            items.append(Item([f"{{{{ star_except(ref('{primary}'), [{quoted}]) }}}}"], [self.carry(c, primary) for c in kept]))
        else:
            cap = rng.randint(8, 16)
            chosen = {c.name for c in rng.sample(others, min(cap, len(others)))}
            kept = [c for c in p_cols if c in fks or c.name in chosen]
            for c in kept:
                items.append(Item([c.name], [self.carry(c, primary)]))
        namer = Namer([c.name for c in kept], number)
        derived = self.derived_items(kept, namer, key, primary, rng.randint(2, 5) + extra)
        loop_items: list[Item] = []
        nums = [c for c in kept if c.kind in ("num", "int")]
        partition = next((c for c in kept if c.kind.startswith("fk:")), None) or next((c for c in kept if c.kind == "cat"), None)
        if rng.random() < 0.2 and len(nums) >= 2 and partition is not None:
            measures = [c for c in rng.sample(nums, min(len(nums), rng.randint(2, 3)))]
            pname = partition.name.removesuffix("_id")
            suffix = f"_per_{pname}"
            if all(namer.free(m.name + suffix) for m in measures):
                for m in measures:
                    namer.take(m.name + suffix)
                set_lines.append(f"{{% set measures = [{', '.join(repr(m.name) for m in measures)}] %}}")
                loop_cols = [Col(m.name + suffix, "num", (), ((primary, m.name), (primary, partition.name)),
                                 f"Average {m.name} over all rows with the same {partition.name}.") for m in measures]
                loop_items.append(Item(["{% for m in measures -%}", f"avg({{{{ m }}}}) over (partition by {partition.name}) as {{{{ m }}}}{suffix},",
                                        "{% endfor -%}"], loop_cols, loop=True))
        base_items = items + loop_items + derived
        base_cols = [c for it in base_items for c in it.cols]
        ctes = [import_cte(p_alias, primary)]
        logical = [cte("base", ["    select", *render_items(base_items), "", f"    from {p_alias}"])]
        # -- secondaries: roll-ups of finer models by our key, and look-ups of coarser ones by a foreign key
        joins: list[tuple[str, str, list[Col], bool]] = []  # (alias, join condition, columns taken, is a look-up)
        used = {primary}
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            if rng.random() < 0.5:
                got = self.rollup(layer, grain, key, used, namer, aliases, alias_for, set_lines)
            else:
                got = self.lookup(layer, base_cols, used, namer, alias_for)
            if got is None:
                continue
            ref, alias, extra_ctes, join_alias, cond, cols = got
            used.add(ref)
            imports.append((alias, ref))
            ctes.append(import_cte(alias, ref))
            logical += extra_ctes
            joins.append((join_alias, cond, cols, not extra_ctes))
        last = "base"
        cols_now = list(base_cols)
        rolled_up = {c.name for _, _, cols, is_lookup in joins if not is_lookup for c in cols if c.kind in ("num", "int")}
        if joins:
            sel = [Item([f"base.{c.name}"], [c]) for c in base_cols]
            for alias, _, cols, is_lookup in joins:
                for c in cols:
                    read = c.src[0][1] if is_lookup else c.name
                    sel.append(Item([f"{alias}.{read}" + ("" if read == c.name else f" as {c.name}")], [c]))
            join_lines = []
            for alias, cond, _, _ in joins:
                join_lines += [f"    left join {alias}", f"        on {cond}"]
            logical.append(cte("joined", ["    select", *render_items(sel), "", "    from base", *join_lines]))
            last = "joined"
            cols_now += [c for _, _, cols, _ in joins for c in cols]
        # -- a scoring step over the joined row (window functions on what the roll-ups added)
        measures_after = [c for c in cols_now if c.kind in ("num", "int") and c not in base_cols]
        if measures_after and rng.random() < 0.6:
            m = rng.choice(measures_after)
            rank = Col(namer.take(f"{m.name}_rank"), "int", (), m.src, f"Rank of the row by {m.name}, highest first.")
            share = Col(namer.take(f"{m.name}_share"), "num", (), m.src, f"This row's share of the total {m.name}.")
            sel = [Item([f"{last}.*"], []), Item([f"rank() over (order by {m.name} desc nulls last) as {rank.name}"], [rank]),
                   Item([f"{m.name} / nullif(sum({m.name}) over (), 0) as {share.name}"], [share])]
            logical.append(cte("scored", ["    select", *render_items(sel), "", f"    from {last}"]))
            last = "scored"
            cols_now += [rank, share]
        # -- final: an explicit column list (a subset, the key and foreign keys always)
        plain = {c.name for c in p_cols if c.kind != "key" and not c.kind.startswith("fk:")}
        carried = [c for c in cols_now if c.name in plain and c.src == ((primary, c.name),)]
        dropped_names = {c.name for c in rng.sample(carried, len(carried) // 4)}
        final_cols = [c for c in cols_now if c.name not in dropped_names]
        loop_names = {c.name for it in loop_items for c in it.cols}
        final_items: list[Item] = []
        loop_done = False
        for c in final_cols:
            if c.name in loop_names:
                if not loop_done:
                    final_items.append(Item(["{% for m in measures -%}", f"{{{{ m }}}}{suffix},", "{% endfor -%}"],
                                            [x for x in final_cols if x.name in loop_names], loop=True))
                    loop_done = True
                continue
            coalesced = c.name in rolled_up
            final_items.append(Item([f"coalesce({c.name}, 0) as {c.name}" if coalesced else c.name], [c]))
        if final_items[-1].loop:  # a Jinja loop renders its own commas: a plain column must follow it
            final_items.append(final_items.pop(next(i for i, it in enumerate(final_items) if not it.loop)))
        out = [c for it in final_items for c in it.cols]
        logical.append(cte("final", ["    select", *render_items(final_items), "", f"    from {last}"]))
        parents = [r for _, r in imports]
        steps = ", ".join(x[0].split(" ")[0] for x in logical)
        reads = ", ".join(f"`{r}`" for r in parents)
        header = ["{#-", f"    {name}: one row per {grain} ({key}).", "", f"    Reads {reads}.",
                  f"    Steps: {steps}.", "    Import CTEs select * from each ref; logical CTEs derive, roll up and join;",
                  "    `final` lists the output columns.", "-#}"]
        sql = header + set_lines + ([""] if set_lines else []) + join_ctes(ctes + logical) + ["", "select * from final", ""]
        desc = (f"One row per {grain} ({key}), built from `{primary}`" + (f" with {', '.join(f'`{r}`' for r in parents[1:])}" if parents[1:] else "")
                + f": {len(out)} columns, {len(logical)} logical steps.")
        model = Model(name, layer, folder, grain, out, parents, "\n".join(sql), desc)
        model.undocumented = {c.name for c in out if c.kind not in ("key",) and rng.random() < 0.03}
        return model

    @staticmethod
    def carry(c: Col, parent: str) -> Col:
        return Col(c.name, c.kind, c.cats, ((parent, c.name),), c.doc)

    def derived_items(self, cols: list[Col], namer: Namer, key: str, parent: str, count: int) -> list[Item]:
        rng = self.rng
        dates = [c for c in cols if c.kind == "date"]
        nums = [c for c in cols if c.kind in ("num", "int")]
        cats = [c for c in cols if c.kind == "cat" and c.cats]
        bools = [c for c in cols if c.kind == "bool"]
        fks = [c for c in cols if c.kind.startswith("fk:")]
        part = rng.choice(fks or cats) if (fks or cats) else None
        order = rng.choice(dates).name if dates else key
        out: list[Item] = []
        ops = ["band", "flag", "window_sum", "row_number", "lag", "month", "bool_int", "days"]
        for _ in range(count * 3):
            if len(out) >= count:
                break
            op = rng.choice(ops)
            if op == "band" and nums:
                c = rng.choice(nums)
                hi, lo = rng.choice([(100, 10), (50, 5), (1000, 100), (20, 2)])
                n = namer.take(f"{c.name}_band")
                out.append(Item(["case", f"    when {c.name} >= {hi} then 'high'", f"    when {c.name} >= {lo} then 'medium'", "    else 'low'",
                                 f"end as {n}"], [Col(n, "cat", ("high", "medium", "low"), ((parent, c.name),), f"{c.name} in three bands (high, medium, low).")]))
            elif op == "flag" and cats:
                c = rng.choice(cats)
                vals = rng.sample(c.cats, min(2, len(c.cats)))
                n = namer.take(f"is_{c.name}_{vals[0]}".lower())
                inlist = ", ".join(f"'{v}'" for v in vals)
                out.append(Item(["case", f"    when {c.name} in ({inlist}) then true", "    else false", f"end as {n}"],
                                [Col(n, "bool", (), ((parent, c.name),), f"True when {c.name} is one of {inlist}.")]))
            elif op == "window_sum" and nums and part is not None:
                c = rng.choice(nums)
                fn = rng.choice(["sum", "avg", "max"])
                n = namer.take(f"{fn}_{c.name}_per_{part.name.removesuffix('_id')}")
                out.append(Item([f"{fn}({c.name}) over (partition by {part.name}) as {n}"],
                                [Col(n, "num", (), ((parent, c.name), (parent, part.name)), f"{fn} of {c.name} over rows with the same {part.name}.")]))
            elif op == "row_number" and part is not None:
                n = namer.take(f"{key.removesuffix('_id')}_sequence")
                out.append(Item([f"row_number() over (partition by {part.name} order by {order}, {key}) as {n}"],
                                [Col(n, "int", (), ((parent, part.name), (parent, order)), f"Position of the row among those with the same {part.name}, by {order}.")]))
            elif op == "lag" and dates and part is not None:
                c = rng.choice(dates)
                n = namer.take(f"previous_{c.name}")
                out.append(Item([f"lag({c.name}) over (partition by {part.name} order by {c.name}, {key}) as {n}"],
                                [Col(n, "date", (), ((parent, c.name), (parent, part.name)), f"{c.name} of the previous row with the same {part.name}.")]))
            elif op == "month" and dates:
                c = rng.choice(dates)
                n = namer.take(f"{c.name}_month")
                out.append(Item([f"cast(date_trunc('month', {c.name}) as date) as {n}"], [Col(n, "date", (), ((parent, c.name),), f"First day of the month of {c.name}.")]))
            elif op == "bool_int" and bools:
                c = rng.choice(bools)
                n = namer.take(f"{c.name.removeprefix('is_')}_flag")
                out.append(Item(["case", f"    when {c.name} then 1", "    else 0", f"end as {n}"], [Col(n, "int", (), ((parent, c.name),), f"1 when {c.name}, else 0.")]))
            elif op == "days" and len(dates) >= 2:
                a, b = rng.sample(dates, 2)
                n = namer.take(f"days_{a.name}_to_{b.name}")
                out.append(Item([f"date_diff('day', {a.name}, {b.name}) as {n}"], [Col(n, "int", (), ((parent, a.name), (parent, b.name)), f"Days from {a.name} to {b.name}.")]))
        if not out:
            n = namer.take(f"{key.removesuffix('_id')}_rank")
            out.append(Item([f"row_number() over (order by {key}) as {n}"], [Col(n, "int", (), ((parent, key),), f"Position of the row by {key}.")]))
        return out

    def rollup(self, layer: str, grain: str, key: str, used: set[str], namer: Namer, aliases: set[str], alias_for, set_lines: list[str]):
        rng = self.rng
        pool = [n for e in ENTITIES if e != grain for n in self.upstream_pool(layer, e)
                if n not in used and any(c.name == key and c.kind.startswith("fk:") for c in self.models[n].cols)]
        if not pool:
            return None
        ref = self.pick(pool)
        m = self.models[ref]
        alias = alias_for(PLURAL[m.grain])
        roll = alias_for(f"{m.grain}_rollup")
        nums = [c for c in m.cols if c.kind in ("num", "int") and c.name != key and not c.name.endswith(("_rank", "_sequence", "_share", "_flag"))]
        dates = [c for c in m.cols if c.kind == "date"]
        cats = [c for c in m.cols if c.kind == "cat" and 2 <= len(c.cats) <= 5]
        items: list[Item] = [Item([key], [])]
        cols: list[Col] = []
        n = namer.take(f"{m.grain}_count")
        cols.append(Col(n, "int", (), ((ref, m.key),), f"Number of {PLURAL[m.grain]} of the {grain}."))
        items.append(Item([f"count(*) as {n}"], [cols[-1]]))
        for c in rng.sample(nums, min(len(nums), rng.randint(1, 2))):
            n = namer.take(f"total_{c.name}")
            cols.append(Col(n, "num", (), ((ref, c.name),), f"Total {c.name} over the {grain}'s {PLURAL[m.grain]}."))
            items.append(Item([f"sum({c.name}) as {n}"], [cols[-1]]))
        if dates:
            c = rng.choice(dates)
            for fn, word in (("min", "first"), ("max", "last")):
                n = namer.take(f"{word}_{c.name}")
                cols.append(Col(n, "date", (), ((ref, c.name),), f"{word.capitalize()} {c.name} among the {grain}'s {PLURAL[m.grain]}."))
                items.append(Item([f"{fn}({c.name}) as {n}"], [cols[-1]]))
        if cats and "{% set values" not in "".join(set_lines) and rng.random() < 0.4:
            c = rng.choice(cats)
            suffix = f"_{PLURAL[m.grain]}"
            names = [f"{v.lower()}{suffix}" for v in c.cats]
            if all(namer.free(x) for x in names):
                for x in names:
                    namer.take(x)
                set_lines.append(f"{{% set values = [{', '.join(repr(v) for v in c.cats)}] %}}")
                loop_cols = [Col(x, "int", (), ((ref, c.name),), f"Number of {PLURAL[m.grain]} with {c.name} '{v}'.") for x, v in zip(names, c.cats)]
                items.insert(1, Item(["{% for v in values -%}", f"sum(case when {c.name} = '{{{{ v }}}}' then 1 else 0 end) as {{{{ v | lower }}}}{suffix},",
                                      "{% endfor -%}"], [], loop=True))
                cols[0:0] = loop_cols
        body = ["    select", *render_items(items), "", f"    from {alias}", f"    group by {key}"]
        return ref, alias, [cte(roll, body)], roll, f"base.{key} = {roll}.{key}", cols

    def lookup(self, layer: str, base_cols: list[Col], used: set[str], namer: Namer, alias_for):
        rng = self.rng
        fks = [c for c in base_cols if c.kind.startswith("fk:")]
        if not fks:
            return None
        fk = rng.choice(fks)
        entity = fk.kind.split(":")[1]
        pool = [n for n in self.upstream_pool(layer, entity) if n not in used]
        if not pool:
            return None
        ref = self.pick(pool)
        m = self.models[ref]
        alias = alias_for(PLURAL[entity] + "_lookup")
        attrs = [c for c in m.cols if c.kind != "key"]
        cols = []
        for c in rng.sample(attrs, min(len(attrs), rng.randint(1, 3))):
            n = namer.take(c.name if namer.free(c.name) else f"{entity}_{c.name}")
            cols.append(Col(n, c.kind, c.cats, ((ref, c.name),), c.doc or f"{c.name} of the {entity}."))
        # no CTE of its own: `joined` reads <alias>.<column> [as <name>] straight from the import CTE
        return ref, alias, [], alias, f"base.{fk.name} = {alias}.{m.key}", cols


# --------------------------------------------------------------------------- writing


def yaml_str(text: str) -> str:
    return json.dumps(text)


def write_project(gen: Generator, out: Path, n_models: int, seed: int) -> dict:
    if out.exists():
        for child in ("models", "seeds", "macros"):
            shutil.rmtree(out / child, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(FIXTURE / "macros", out / "macros")
    fixture_yml = (FIXTURE / "dbt_project.yml").read_text()
    flags = fixture_yml[fixture_yml.index("flags:"):fixture_yml.index("seeds:")].rstrip() + "\n"
    (out / "dbt_project.yml").write_text(
        f"# Generated by bench/gen_styleguide_project.py --models {n_models} --seed {seed}: a large project in the dbt\n"
        "# style guide's CTE idiom (see fixtures/styleguide), for benchmarking the column model.\n"
        f"name: {PROJECT}\nversion: \"1.0.0\"\nconfig-version: 2\nprofile: {PROJECT}\nrequire-dbt-version: [\">=1.10.0\", \"<2.0.0\"]\n\n"
        "model-paths: [\"models\"]\nseed-paths: [\"seeds\"]\nmacro-paths: [\"macros\"]\n\nclean-targets:\n  - target\n  - logs\n  - dbt_packages\n\n"
        + flags + "\n"
        f"seeds:\n  {PROJECT}:\n    +schema: raw\n    +quote_columns: false\n\n"
        f"models:\n  {PROJECT}:\n    staging:\n      +materialized: view\n      +tags: [\"staging\"]\n"
        "    # tables, not views: DuckDB inlines views, and a deep DAG of joined views plans exponentially\n"
        "    intermediate:\n      +materialized: table\n      +tags: [\"intermediate\"]\n"
        "    marts:\n      +materialized: table\n      +tags: [\"marts\"]\n\n"
        f"data_tests:\n  {PROJECT}:\n    +severity: error\n")
    (out / "profiles.yml").write_text(
        f"{PROJECT}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      # Relative to the process cwd (the project directory under dbt and the server's worker).\n"
        "      path: \"{{ env_var('DBT_AE_DUCKDB_PATH', 'styleguide.duckdb') }}\"\n      threads: 2\n")
    (out / ".gitignore").write_text("target/\nlogs/\n*.duckdb\n*.duckdb.wal\n")
    # seeds
    (out / "seeds").mkdir()
    seed_yml = ["seeds:"]
    srng = random.Random(seed * 1000 + 1)
    for entity in ENTITIES:
        seed_name, raw_cols = SEEDS[entity]
        rows = seed_rows(entity, srng)
        (out / "seeds" / f"{seed_name}.csv").write_text(",".join(c.raw for c in raw_cols) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
        seed_yml += [f"  - name: {seed_name}", f"    description: Raw {PLURAL[entity]} as the shop exports them (one row per {entity}).",
                     "    config:", "      column_types:"]
        seed_yml += [f"        {c.raw}: {c.seed_type}" for c in raw_cols]
        seed_yml += ["    columns:"]
        for c in raw_cols:
            seed_yml += [f"      - name: {c.raw}", f"        description: {yaml_str(c.doc)}"]
            if c.kind == "key":
                seed_yml += ["        data_tests:", "          - unique", "          - not_null"]
        seed_yml.append("")
    (out / "seeds" / "_seeds.yml").write_text("\n".join(seed_yml))
    # sources: the tables the seeds load into schema `raw`, read by every other system's staging models
    src_yml = ["sources:", "  - name: raw", "    description: The shop's raw exports, loaded into schema `raw`.", "    schema: raw", "    tables:"]
    for entity in ENTITIES:
        seed_name, raw_cols = SEEDS[entity]
        src_yml += [f"      - name: {seed_name}", f"        description: Raw {PLURAL[entity]}, one row per {entity}.", "        columns:"]
        src_yml += [f"          - name: {c.raw}\n            description: {yaml_str(c.doc)}" for c in raw_cols]
    (out / "models" / "staging").mkdir(parents=True, exist_ok=True)
    (out / "models" / "staging" / "_sources.yml").write_text("\n".join(src_yml) + "\n")
    # models and one YAML per folder
    folders: dict[str, list[Model]] = {}
    for m in gen.models.values():
        folders.setdefault(m.folder, []).append(m)
    for folder, models in folders.items():
        d = out / "models" / folder
        d.mkdir(parents=True, exist_ok=True)
        yml = ["models:"]
        for m in models:
            (d / f"{m.name}.sql").write_text(m.sql)
            yml += [f"  - name: {m.name}", f"    description: {yaml_str(m.description)}", "    columns:"]
            for c in m.cols:
                if c.name in m.undocumented:
                    continue
                yml += [f"      - name: {c.name}", f"        description: {yaml_str(c.doc or c.name.replace('_', ' ') + '.')}"]
                if c.kind == "key":
                    yml += ["        data_tests:", "          - unique", "          - not_null"]
            yml.append("")
        (d / f"_{folder.replace('/', '__')}__models.yml").write_text("\n".join(yml))
    hints = bench_hints(gen)
    (out / "bench_hints.json").write_text(json.dumps(hints, indent=1) + "\n")
    return hints


def bench_hints(gen: Generator) -> dict:
    """A staging column (not a key) whose values reach a mart within 3 model hops (through an intermediate model), with
    the median fan-out among such columns; the mart column for the upstream trace; and the one-line edit that renames
    the staging column."""
    children: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for m in gen.models.values():
        for c in m.cols:
            for parent, pc in c.src:
                if parent in gen.models:
                    children.setdefault((parent, pc), []).append((m.name, c.name))
    candidates = []
    for m in gen.models.values():
        if m.layer != "staging":
            continue
        for c in m.cols:
            if c.kind == "key" or c.kind.startswith("fk:"):
                continue
            dist = {(m.name, c.name): 0}
            queue = deque([(m.name, c.name)])
            while queue:
                node = queue.popleft()
                if dist[node] >= 3:
                    continue
                for child in children.get(node, []):
                    if child not in dist:
                        dist[child] = dist[node] + 1
                        queue.append(child)
            marts = sorted((d, n, col) for (n, col), d in dist.items() if gen.models[n].layer == "marts")
            if marts:
                candidates.append((len(dist), m.name, c.name, marts[0]))
    candidates.sort()
    through_intermediate = [c for c in candidates if c[3][0] >= 2] or candidates
    reach, model, column, (hops, mart, mart_column) = through_intermediate[len(through_intermediate) // 2]
    line = gen.staging_lines[model][column]
    renamed = line.rstrip(",") + f" as {column}_renamed" if line.strip() == column else line.replace(f" as {column}", f" as {column}_renamed")
    return {"staging_model": model, "column": column, "mart_model": mart, "mart_column": mart_column, "hops": hops,
            "column_nodes_within_3_hops": reach, "staging_path": f"models/{gen.models[model].folder}/{model}.sql",
            "rename": {"from": line, "to": renamed}, "models": len(gen.models),
            "layers": {layer: sum(m.layer == layer for m in gen.models.values()) for layer in ("staging", "intermediate", "marts")},
            "sql_lines": {"min": min(m.sql.count("\n") for m in gen.models.values()), "max": max(m.sql.count("\n") for m in gen.models.values()),
                          "mean": round(sum(m.sql.count("\n") for m in gen.models.values()) / len(gen.models), 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    a = parser.parse_args()
    gen = Generator(a.models, a.seed)
    gen.generate()
    hints = write_project(gen, a.out, a.models, a.seed)
    print(json.dumps(hints, indent=1))


if __name__ == "__main__":
    main()
