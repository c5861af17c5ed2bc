#!/usr/bin/env python3
"""Generate ``apollo_people_sample.csv``: a synthetic Apollo.io people export.

Every person and company in the output is invented.  The file mimics the
current Apollo.io "people" CSV export (50 columns, CRLF line endings, UTF-8)
including the messiness real exports have: legal-form suffixes on company
names, mixed website forms, Excel-style apostrophe-prefixed phone numbers,
inconsistent casing of names and booleans, localised country names,
comma-formatted employee counts, ``$1.2M``-style revenue, quoted
comma-separated lists and one multi-line job title.

Standard library only and fully deterministic (seeded ``random.Random``), so
re-running it reproduces the committed file byte for byte::

    python examples/make_sample.py            # writes next to this script
    python examples/make_sample.py out.csv    # or to an explicit path
"""

from __future__ import annotations

import csv
import random
import sys
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20240517
N_ROWS = 200

HEADERS = [
    "First Name", "Last Name", "Title", "Company Name", "Company Name for Emails",
    "Email", "Email Status", "Primary Email Source", "Email Confidence", "Seniority",
    "Departments", "Contact Owner", "Work Direct Phone", "Home Phone", "Mobile Phone",
    "Corporate Phone", "Other Phone", "Stage", "Lists", "Last Contacted",
    "Account Owner", "# Employees", "Industry", "Keywords", "Person Linkedin Url",
    "Website", "Company Linkedin Url", "Facebook Url", "Twitter Url", "City",
    "State", "Country", "Company Address", "Company City", "Company State",
    "Company Country", "Company Phone", "Technologies", "Annual Revenue",
    "Total Funding", "Latest Funding", "Latest Funding Amount", "Last Raised At",
    "Email Sent", "Email Open", "Email Bounced", "Replied", "Demoed",
    "Apollo Contact Id", "Apollo Account Id",
]

# ---------------------------------------------------------------------------
# Companies (all fictional).  Tuple fields:
#   name, name_for_emails, email_domain, website_as_written, region, industry
# region selects address / phone / country formats.
# ---------------------------------------------------------------------------
COMPANIES = [
    ("Acme Widgets, Inc.", "Acme Widgets", "acme.com", "http://www.acme.com", "us", "machinery"),
    ("Globex Holdings Ltd", "Globex", "globex.co.uk", "https://globex.co.uk/", "uk", "financial services"),
    ("Müller Maschinenbau GmbH", "Müller Maschinenbau", "mueller-maschinenbau.de", "www.mueller-maschinenbau.de", "de", "mechanical or industrial engineering"),
    ("Soylent S.A.", "Soylent", "soylent-sa.fr", "https://www.soylent-sa.fr", "fr", "food production"),
    ("Initech LLC", "Initech", "initech.com", "initech.com", "us", "computer software"),
    ("BLUTH COMPANY", "Bluth Company", "bluthcompany.com", "http://bluthcompany.com/", "us", "real estate"),
    ("umbrella corp", "Umbrella", "umbrella-corp.com", "", "us", "pharmaceuticals"),
    ("Vandelay Industries™", "Vandelay Industries", "vandelayindustries.com", "https://vandelayindustries.com", "us", "import and export"),
    ("Omnisient - Collaborative Consumer Intelligence", "Omnisient", "omnisient.io", "https://www.omnisient.io/", "us", "marketing and advertising"),
    ("Adventure Works Cycles Co., Ltd.", "Adventure Works", "adventure-works.com.cn", "www.adventure-works.com.cn", "vn", "sporting goods"),
    ("Brightwater Analytics", "Brightwater", "brightwater-analytics.com", "https://brightwater-analytics.com", "us", "information technology and services"),
    ("Quillfeather Publishing Ltd", "Quillfeather", "quillfeather.co.uk", "http://www.quillfeather.co.uk", "uk", "publishing"),
    ("Nordlys Energi ApS", "Nordlys Energi", "nordlys-energi.dk", "https://nordlys-energi.dk/", "dk", "renewables & environment"),
    ("Saigon Lotus Logistics JSC", "Saigon Lotus Logistics", "saigonlotus.vn", "saigonlotus.vn", "vn", "logistics and supply chain"),
    ("Halvorsen & Pike LLP", "Halvorsen & Pike", "halvorsenpike.com", "https://www.halvorsenpike.com", "us", "law practice"),
    ("Cobaltline Systems, Inc.", "Cobaltline", "cobaltline.io", "https://cobaltline.io", "us", "computer software"),
    ("Ferncliff Dental Group", "Ferncliff Dental", "ferncliffdental.com", "https://www.facebook.com/ferncliffdental", "us", "medical practice"),
    ("Tessaract Robotics GmbH", "Tessaract Robotics", "tessaract-robotics.de", "https://www.tessaract-robotics.de/de/", "de", "industrial automation"),
    ("Larkspur Capital Partners", "Larkspur Capital", "larkspurcap.com", "http://larkspurcap.com", "us", "venture capital & private equity"),
    ("Maison Verbois SARL", "Maison Verbois", "maisonverbois.fr", "www.maisonverbois.fr", "fr", "wine and spirits"),
    ("Pinecrest Home Health", "Pinecrest Home Health", "pinecresthh.com", "", "us", "hospital & health care"),
    ("Oakhaven Software Ltd", "Oakhaven", "oakhaven.co.uk", "https://oakhaven.co.uk", "uk", "computer software"),
    ("Redwillow Studios", "Redwillow", "redwillow.studio", "https://www.linkedin.com/company/redwillow-studios", "us", "design"),
    ("Kestrel Aerospace Corp.", "Kestrel Aerospace", "kestrelaero.com", "http://www.kestrelaero.com/", "us", "aviation & aerospace"),
    ("Blåbær Design A/S", "Blåbær Design", "blaabaer.dk", "https://blaabaer.dk", "dk", "design"),
    ("Harrowgate Insurance plc", "Harrowgate Insurance", "harrowgate.co.uk", "www.harrowgate.co.uk", "uk", "insurance"),
    ("Zinnober Chemie AG", "Zinnober Chemie", "zinnober-chemie.de", "http://www.zinnober-chemie.de", "de", "chemicals"),
    ("Mekong Fresh Foods", "Mekong Fresh Foods", "mekongfresh.vn", "https://mekongfresh.vn/", "vn", "food & beverages"),
    ("Silverbirch Learning, Inc.", "Silverbirch Learning", "silverbirchlearning.com", "https://silverbirchlearning.com", "us", "e-learning"),
    ("Northgate Freight Ltd", "Northgate Freight", "northgatefreight.co.uk", "", "uk", "transportation/trucking/railroad"),
    ("Coralreef Hospitality Group", "Coralreef Hospitality", "coralreefhg.com", "http://coralreefhg.com", "us", "hospitality"),
    ("Quantaloom AI", "Quantaloom", "quantaloom.ai", "https://www.quantaloom.ai", "us", "artificial intelligence"),
    ("Ostwind Versand GmbH & Co. KG", "Ostwind Versand", "ostwind-versand.de", "ostwind-versand.de", "de", "retail"),
    ("Éclat Cosmétiques SAS", "Éclat Cosmétiques", "eclat-cosmetiques.fr", "https://www.eclat-cosmetiques.fr/", "fr", "cosmetics"),
    ("GRANITE PEAK CONSTRUCTION", "Granite Peak Construction", "granitepeakbuild.com", "http://www.granitepeakbuild.com", "us", "construction"),
    ("tidewater labs", "Tidewater Labs", "tidewaterlabs.io", "tidewaterlabs.io", "us", "biotechnology"),
    ("Fjordline Shipping A/S", "Fjordline Shipping", "fjordline-ship.dk", "http://www.fjordline-ship.dk", "dk", "maritime"),
    ("Marigold Payments Ltd", "Marigold Payments", "marigoldpay.co.uk", "https://marigoldpay.co.uk/", "uk", "financial services"),
    ("Hollowmere Veterinary Clinic", "Hollowmere Veterinary", "hollowmerevet.com", "", "us", "veterinary"),
    ("Sunbridge Solar Co.", "Sunbridge Solar", "sunbridgesolar.com", "https://sunbridgesolar.com", "us", "renewables & environment"),
]

REGIONS = {
    "us": {
        "countries": ["United States", "United States", "United States", "USA"],
        "places": [("San Leandro", "California"), ("Austin", "Texas"), ("Columbus", "Ohio"),
                   ("Portland", "Oregon"), ("Raleigh", "North Carolina"), ("Boulder", "Colorado"),
                   ("Newark", "New Jersey"), ("Madison", "Wisconsin")],
    },
    "uk": {
        "countries": ["United Kingdom", "UK", "UK"],
        "places": [("London", "England"), ("Manchester", "England"), ("Leeds", "England"),
                   ("Edinburgh", "Scotland"), ("Bristol", "England")],
    },
    "de": {
        "countries": ["Germany", "Germany", "Deutschland"],
        "places": [("München", "Bayern"), ("Stuttgart", "Baden-Württemberg"),
                   ("Hamburg", "Hamburg"), ("Köln", "Nordrhein-Westfalen"), ("Berlin", "Berlin")],
    },
    "fr": {
        "countries": ["France"],
        "places": [("Lyon", "Auvergne-Rhône-Alpes"), ("Paris", "Île-de-France"),
                   ("Bordeaux", "Nouvelle-Aquitaine"), ("Nantes", "Pays de la Loire")],
    },
    "dk": {
        "countries": ["Denmark"],
        "places": [("Aarhus", "Central Denmark Region"), ("København", "Capital Region of Denmark"),
                   ("Odense", "Region of Southern Denmark")],
    },
    "vn": {
        "countries": ["Vietnam", "Viet Nam"],
        "places": [("Ho Chi Minh City", "Ho Chi Minh"), ("Hanoi", "Hanoi"), ("Da Nang", "Da Nang")],
    },
}

FIRST_NAMES = {
    "us": ["Marcy", "Dalton", "Priya", "Keenan", "Rosalind", "Trevor", "Imani", "Wesley",
           "Celeste", "Jordy", "Harriet", "Malik", "Juniper", "Ezra", "Noreen", "Caleb"],
    "uk": ["Fergus", "Imogen", "Rupert", "Siobhan", "Alastair", "Poppy", "Declan", "Hattie",
           "Callum", "Tamsin"],
    "de": ["Jürgen", "Katharina", "Lukas", "Anneliese", "Matthias", "Wiebke", "Torben", "Henrike"],
    "fr": ["José", "Zoë", "Amélie", "Thibault", "Océane", "Gaëtan", "Margaux", "Loïc"],
    "dk": ["Søren", "Åse", "Mikkel", "Signe", "Bjørn", "Frederikke"],
    "vn": ["Thảo", "Minh", "Hương", "Quang", "Lan", "Đức"],
}
LAST_NAMES = {
    "us": ["Whitlock", "Okafor", "Brannigan", "Castellano", "Pemberton", "Yarrow", "Delacroix",
           "Huxley", "Marchetti", "Oyelaran", "Quimby", "Thistlewood", "Vance-Ortiz", "Lindqvist"],
    "uk": ["Ashdown", "Fairweather", "Greenhalgh", "Pennington", "Wetherby", "Crossley",
           "Blakemore", "Hargreaves"],
    "de": ["Brandtner", "Kühnel", "Oberholzer", "Weißmann", "Steinhauer", "Zöllner", "Ebersbach"],
    "fr": ["Dufresne", "Lefèvre", "Marchand", "Ravenel", "Béranger", "Castagné"],
    "dk": ["Kjærgaard", "Østergaard", "Lindholm", "Frøslev", "Bækgaard"],
    "vn": ["Nguyễn", "Trần", "Phạm", "Lê", "Võ", "Đặng"],
}

# (title, seniority, departments)
ROLES = [
    ("Founder & CEO", "Founder", "C-Suite"),
    ("Co-Founder", "Founder", "C-Suite"),
    ("Chief Executive Officer", "C suite", "C-Suite"),
    ("Chief Technology Officer", "C suite", "C-Suite, Engineering & Technical"),
    ("CFO", "C suite", "C-Suite, Finance"),
    ("VP of Sales", "Vp", "Sales"),
    ("Vice President, Marketing", "Vp", "Marketing"),
    ("VP Engineering", "Vp", "Engineering & Technical"),
    ("Director of Operations", "Director", "Operations"),
    ("Director, Human Resources", "Director", "Human Resources"),
    ("Sales Director EMEA", "Director", "Sales"),
    ("Head of Growth", "Head", "Marketing, Sales"),
    ("Head of Data", "Head", "Engineering & Technical, Information Technology"),
    ("Marketing Manager", "Manager", "Marketing"),
    ("IT Manager", "Manager", "Information Technology"),
    ("Account Manager", "Manager", "Sales"),
    ("Senior Software Engineer", "Senior", "Engineering & Technical"),
    ("Senior Accountant", "Senior", "Finance"),
    ("Sales Development Representative", "Entry", "Sales"),
    ("Marketing Coordinator", "Entry", "Marketing"),
    ("Owner", "Owner", ""),
    ("Managing Partner", "Partner", "C-Suite"),
    ("Partner", "Partner", "Legal"),
    ("Consultant", "", ""),
    ("Geschäftsführer", "Owner", "C-Suite"),
    ("Responsable Commercial", "Manager", "Sales"),
]

KEYWORDS_POOL = [
    "b2b", "saas", "analytics", "supply chain", "logistics", "manufacturing", "precision parts",
    "consumer insights", "data platform", "fintech", "payments", "renewable energy", "solar",
    "e-commerce", "retail", "hospitality", "health care", "home care", "biotech", "drug discovery",
    "construction management", "freight", "maritime", "cosmetics", "skincare", "wine", "design",
    "branding", "machine learning", "robotics", "insurance", "legal services", "edtech",
]
TECH_POOL = [
    "Salesforce", "HubSpot", "Google Analytics", "Google Tag Manager", "WordPress.org",
    "Shopify", "Microsoft Office 365", "Gmail", "Amazon AWS", "Cloudflare DNS", "Zendesk",
    "Slack", "Stripe", "Mailchimp", "Outlook", "Intercom", "Marketo", "React", "Nginx",
    "Hotjar", "Zoom", "Atlassian Cloud", "SAP", "Microsoft Azure",
]
OWNERS = ["", "", "Dana Pruitt", "Ravi Colborne", "Meg Saltonstall"]
STAGES = ["", "", "Cold", "Approaching", "Replied", "Interested", "Not Interested",
          "Unresponsive", "Do Not Contact", "Bad Data"]
LISTS = ["", "", "Q3 Outbound", "Webinar Leads, Q3 Outbound", "EMEA Expansion",
         "Partners 2024", "Manufacturing ICP, EMEA Expansion"]
EMAIL_STATUS = ["Verified", "Verified", "Verified", "Unverified", "Extrapolated",
                "Unavailable", "Guessed", "User Managed"]
FUNDING_TYPES = ["Seed", "Series A", "Series B", "Series C", "Venture (Round not Specified)",
                 "Private Equity", "Angel", "Other"]

BASE_DATE = datetime(2024, 5, 17, 9, 30, tzinfo=timezone.utc)


def hex24(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def slugify(*parts: str) -> str:
    """ASCII slug: strip diacritics (José -> jose, Nguyễn -> nguyen, Søren -> soren)."""
    special = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "đ": "d", "'": "", ".": "", " ": "-"})
    out = []
    for p in parts:
        if not p:
            continue
        p = unicodedata.normalize("NFKD", p.lower().translate(special))
        out.append("".join(ch for ch in p if ch.isascii() and (ch.isalnum() or ch == "-")))
    return "-".join(out).strip("-")


def ascii_local(s: str) -> str:
    return slugify(s).replace("-", "")


def phone(rng: random.Random, region: str, style: str = "intl") -> str:
    """Return a phone number in one of the formats seen in real exports.

    US, UK, German and French numbers use the ranges reserved for fiction
    (555-01xx, 020 7946 0xxx, 030 23125xxx, 01 99 00 xx xx); the Danish and
    Vietnamese ones are random digits.
    """
    n4 = rng.randint(100, 199)
    if region == "us":
        area = rng.choice(["510", "512", "614", "503", "919", "303", "973", "608"])
        if style == "intl":
            return f"'+1 {area}-555-01{n4 % 100:02d}"
        if style == "paren":
            return f"({area}) 555-01{n4 % 100:02d}"
        return f"+1{area}55501{n4 % 100:02d}"
    if region == "uk":
        if style == "intl":
            return f"'+44 20 7946 0{n4 % 1000:03d}"
        return f"020 7946 0{n4 % 1000:03d}"  # UK national format
    if region == "de":
        if style == "intl":
            return f"'+49 30 23125{n4 % 1000:03d}"
        return f"030 23125 {n4 % 1000:03d}"  # German national format
    if region == "fr":
        return f"'+33 1 99 00 {rng.randint(10, 99)} {rng.randint(10, 99)}"
    if region == "dk":
        return f"'+45 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    return f"'+84 28 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"


def iso(dt: datetime | None) -> str:
    return "" if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def build_company(rng: random.Random, idx: int, spec: tuple) -> dict:
    name, for_emails, domain, website, region, industry = spec
    city, state = rng.choice(REGIONS[region]["places"])
    country = rng.choice(REGIONS[region]["countries"])
    employees = rng.choice([8, 23, 45, 120, 340, 860, 1200, 2450, 5100, 14000])
    if employees >= 1000 and idx % 3 == 0:
        employees_s = f"{employees:,}"          # "1,200" — Excel-formatted
    elif idx % 11 == 5:
        employees_s = ""
    else:
        employees_s = str(employees)
    revenue = employees * rng.randint(60, 260) * 1000
    if idx % 4 == 1:
        revenue_s = f"${revenue / 1e6:.1f}M" if revenue < 1e9 else f"${revenue / 1e9:.1f}B"
    elif idx % 9 == 4:
        revenue_s = ""
    else:
        revenue_s = str(revenue)
    funded = idx % 3 != 2
    latest_amt = rng.choice([750000, 2000000, 5500000, 12000000, 30000000]) if funded else 0
    street_no = rng.randint(1, 2400)
    street = {
        "us": f"{street_no} {rng.choice(['Harbor Blvd', 'Main St', 'Industrial Pkwy', 'Oak Ave'])}",
        "uk": f"{street_no % 200} {rng.choice(['Kingsway', 'Mill Lane', 'Station Road'])}",
        "de": f"{rng.choice(['Industriestraße', 'Hauptstraße', 'Am Hafen'])} {street_no % 150}",
        "fr": f"{street_no % 120} {rng.choice(['rue de la République', 'avenue Jean Jaurès'])}",
        "dk": f"{rng.choice(['Havnegade', 'Søndergade', 'Vestergade'])} {street_no % 90}",
        "vn": f"{street_no % 300} {rng.choice(['Đường Lê Lợi', 'Nguyễn Huệ'])}",
    }[region]
    if idx % 5 == 2:
        address = ""
    else:
        address = f"{street}, {city}, {state}, {country}"
    li_slug = slugify(for_emails)
    keywords = ", ".join(rng.sample(KEYWORDS_POOL, rng.randint(2, 6)))
    techs = ", ".join(rng.sample(TECH_POOL, rng.randint(3, 8)))
    return {
        "name": name,
        "for_emails": for_emails,
        "domain": domain,
        "website": website,
        "region": region,
        "industry": industry,
        "city": city,
        "state": state,
        "country": country,
        "employees": employees_s,
        "revenue": revenue_s,
        "total_funding": str(latest_amt + rng.choice([0, 1000000, 4000000])) if funded else "",
        "latest_funding": rng.choice(FUNDING_TYPES) if funded else "",
        "latest_amount": str(latest_amt) if funded else "",
        "last_raised": iso(BASE_DATE - timedelta(days=rng.randint(60, 1500))) if funded else "",
        "address": address,
        "phone": phone(rng, region, "intl") if idx % 7 != 3 else ("n/a" if idx % 2 else ""),
        "linkedin": f"http://www.linkedin.com/company/{li_slug}" if idx % 8 != 6 else "",
        "facebook": f"https://www.facebook.com/{ascii_local(for_emails)}" if idx % 3 == 0 else "",
        "twitter": f"https://twitter.com/{ascii_local(for_emails)[:15]}" if idx % 4 != 3 else "",
        "keywords": keywords,
        "technologies": techs,
        "account_id": hex24(rng),
    }


def person_name(rng: random.Random, region: str, row: int) -> tuple[str, str]:
    first = rng.choice(FIRST_NAMES[region])
    last = rng.choice(LAST_NAMES[region])
    # Hand-placed casing/honorific quirks (all invented names).
    special = {
        7: ("DR. ALAN", "TREMBLAY JR."),
        23: ("siobhan", "o'brien"),
        41: ("MARCY", "WHITLOCK"),
        66: ("keenan", "mcallister-vane"),
        88: ("Zoë", "Lefèvre-Marchand"),
        103: ("Nguyễn", "Văn Minh"),
        131: ("Søren", "Kjærgaard"),
        150: ("José", "de la Fuente"),
        172: ("rupert", "ASHDOWN"),
        190: ("Mary-Kate", "O'Donnell III"),
    }
    return special.get(row, (first, last))


def email_for(rng: random.Random, first: str, last: str, company: dict, row: int) -> str:
    f = ascii_local(first.replace("DR. ", "").replace("dr. ", ""))
    l = ascii_local(last.replace(" JR.", "").replace(" III", ""))
    if row % 17 == 9:
        return f"{f}.{l}{rng.randint(1, 99)}@gmail.com"
    if row % 29 == 13:
        return f"{f}_{l}@yahoo.com"
    if row % 13 == 6:
        return ""
    pattern = row % 4
    local = {0: f"{f}.{l}", 1: f"{f[:1]}{l}", 2: f, 3: f"{f}{l[:1]}"}[pattern]
    addr = f"{local}@{company['domain']}"
    return addr.upper() if row % 37 == 20 else addr


def person_linkedin(rng: random.Random, first: str, last: str, company: dict, row: int) -> str:
    slug = slugify(first.replace("DR. ", ""), last.replace(" JR.", "")) + f"-{rng.randint(10, 99999):x}"
    if row % 19 == 11:
        return ""
    if company["region"] == "uk" and row % 2 == 0:
        return f"https://uk.linkedin.com/in/{slug}/?trk=public_profile_browsemap"
    if company["region"] == "de" and row % 3 == 0:
        return f"https://de.linkedin.com/in/{slug}"
    return f"http://www.linkedin.com/in/{slug}"


def boolean(rng: random.Random, p_true: float, row: int) -> str:
    value = rng.random() < p_true
    if row % 5 == 3:
        return "TRUE" if value else "FALSE"  # Excel round-trip casing
    return "true" if value else "false"


def build_rows() -> list[list[str]]:
    rng = random.Random(SEED)
    companies = [build_company(rng, i, spec) for i, spec in enumerate(COMPANIES)]
    # Every company gets 3 people, the rest are spread with a skew so that a
    # handful of accounts have many contacts (de-duplication matters).
    assignment = [i for i in range(len(companies)) for _ in range(3)]
    weights = [6 if i < 6 else (3 if i < 15 else 1) for i in range(len(companies))]
    assignment += rng.choices(range(len(companies)), weights=weights, k=N_ROWS - len(assignment))
    rng.shuffle(assignment)

    rows = []
    for row, ci in enumerate(assignment):
        c = companies[ci]
        region = c["region"]
        first, last = person_name(rng, region, row)
        title, seniority, departments = rng.choice(ROLES)
        if row % 23 == 4:
            seniority = ""
        if row == 57:
            # The one multi-line field in the file: a title pasted from a
            # profile with a line break in it.
            title, seniority, departments = "Director of Operations\nNorth America & LATAM", "Director", "Operations"
        email = email_for(rng, first, last, c, row)
        status = "" if not email else rng.choice(EMAIL_STATUS)
        source = "" if not email else rng.choice(["Apollo", "Apollo", "Imported", "CRM", "Chrome Extension"])
        confidence = "" if status not in ("Extrapolated", "Guessed") else f"{rng.randint(55, 98)}%"
        # Person location: mostly the company's, sometimes remote.
        if rng.random() < 0.8:
            city, state, country = c["city"], c["state"], c["country"]
        else:
            r2 = rng.choice(list(REGIONS))
            city, state = rng.choice(REGIONS[r2]["places"])
            country = rng.choice(REGIONS[r2]["countries"])
        if row % 31 == 17:
            city, state = "", ""
        work = phone(rng, region, rng.choice(["intl", "national", "intl"])) if rng.random() < 0.45 else ""
        mobile = phone(rng, region, "intl") if rng.random() < 0.35 else ""
        home = phone(rng, region, "paren" if region == "us" else "national") if row % 14 == 2 else ""
        other = "n/a" if row % 16 == 5 else ("" if row % 9 else phone(rng, region, "e164"))
        last_contacted = (iso(BASE_DATE - timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 1440)))
                          if rng.random() < 0.55 else "")
        sent = rng.random() < 0.6
        rows.append([
            first, last, title, c["name"], c["for_emails"],
            email, status, source, confidence, seniority,
            departments, rng.choice(OWNERS), work, home, mobile,
            c["phone"], other, rng.choice(STAGES), rng.choice(LISTS), last_contacted,
            rng.choice(OWNERS), c["employees"], c["industry"], c["keywords"],
            person_linkedin(rng, first, last, c, row),
            c["website"], c["linkedin"], c["facebook"], c["twitter"], city,
            state, country, c["address"], c["city"], c["state"],
            c["country"], c["phone"], c["technologies"], c["revenue"],
            c["total_funding"], c["latest_funding"], c["latest_amount"], c["last_raised"],
            "true" if sent and row % 5 != 3 else ("TRUE" if sent else boolean(rng, 0.0, row)),
            boolean(rng, 0.45 if sent else 0.0, row),
            boolean(rng, 0.05 if sent else 0.0, row),
            boolean(rng, 0.15 if sent else 0.0, row),
            boolean(rng, 0.05, row),
            hex24(rng), c["account_id"],
        ])
    return rows


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("apollo_people_sample.csv")
    rows = build_rows()
    assert all(len(r) == len(HEADERS) for r in rows)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(HEADERS)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
