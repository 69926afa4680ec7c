"""Branding (issue 16 item 5): merchants' and companies' logos, merchants' colours,
and the footer links. See ``docs/oidc.md`` ("Branding") and ``docs/companies.md``
("Company logo").

* :mod:`idp.branding.images` checks an uploaded logo by its bytes;
* :mod:`idp.branding.colours` checks colours (``#rrggbb``, WCAG AA contrast);
* :mod:`idp.branding.service` stores them (audited) and says what a page shows;
* :mod:`idp.branding.routes` serves logos and the per-merchant stylesheet.
"""
