"""A French-speaking case manager switches the pages to French and works in them."""

from tests.browser.conftest import log_in
from tests.factories import make_case


def test_the_pages_in_french_from_the_language_menu(page, project):
    make_case(project, name="Amina Wanjiru", phone="254712345678")
    log_in(page, project.admin_email, project.password)
    assert page.locator("nav").inner_text().startswith("Dashboard")

    page.select_option("#language-menu select[name=language]", "fr")
    page.click("#language-menu button")
    page.wait_for_selector("html[lang=fr]")
    nav = page.locator("nav").inner_text()
    assert "Groupes de dossiers" in nav and "Diffusions" in nav and "Boîte de réception" in nav

    page.click("nav >> text=Groupes de dossiers")
    page.fill("#create-group input[name=name]", "Village 2")
    page.click("#create-group button")
    page.wait_for_selector("h1#group-name:has-text('Village 2')")
    assert "Groupe « Village 2 » créé." in page.locator(".flash-success").inner_text()
    page.fill("#add-case input[name=identifier]", "+254 712 345 678")
    page.click("#add-case button:has-text('Ajouter')")
    assert "ajouté au groupe." in page.locator(".flash-success").inner_text()
    assert "1 dossier dans ce groupe." in page.locator("p.muted >> nth=0").inner_text()

    page.click("nav >> text=Diffusions")
    page.click("#new-broadcast")
    assert page.locator("h1").inner_text() == "Nouvelle diffusion"
    page.click("nav >> text=Boîte de réception")
    assert page.locator("#inbox").inner_text().count("Rien à traiter dans la boîte de réception.") == 1

    page.select_option("#language-menu select[name=language]", "en")  # and back
    page.click("#language-menu button")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("h1").inner_text() == "Inbox"
