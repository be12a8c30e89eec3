"""Demo data: a realistic, deterministic set of organizations, admins and product sites.

``seed_demo`` seeds (once) an organization "Acme" with a Jira site and a Confluence site
full of data, an empty Jira sandbox and a Confluence restore target that already holds
some of the backed-up spaces, a second organization "Initech" for the same admin, and an
organization "Globex" with a different admin. It returns a ``DemoInfo`` with the tokens
and the ids that later steps (backups, the start-up banner) build on.
"""

from recoverly.demo.backups import seed_demo_backups
from recoverly.demo.seed import INSTANCES, DemoInfo, seed_demo

__all__ = ["INSTANCES", "DemoInfo", "seed_demo", "seed_demo_backups"]
