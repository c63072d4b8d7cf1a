"""The web pages in the user's language: the browser's before logging in, then the one the
person picks from the language menu (stored on their account)."""

from tests.conftest import login


def test_the_login_page_follows_the_browsers_language(app):
    client = app.test_client()
    french = client.get("/login", headers={"Accept-Language": "fr-CD,fr;q=0.9,en;q=0.5"})
    page = french.get_data(as_text=True)
    assert '<html lang="fr">' in page and "Se connecter" in page and "Mot de passe" in page
    swahili = client.get("/login", headers={"Accept-Language": "sw"}).get_data(as_text=True)
    assert "Ingia" in swahili and "Nenosiri" in swahili
    unknown = client.get("/login", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert '<html lang="en">' in unknown and "Keep me logged in" in unknown


def test_a_user_picks_french_and_reads_the_main_pages_in_it(app, project, web):
    r = web.post("/account/language", {"language": "fr", "next": "/case-groups"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/case-groups")
    page = web.get("/case-groups").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Groupes de dossiers" in page and "Créer le groupe" in page and "Boîte de réception" in page
    assert '<option value="fr" selected>Français</option>' in page
    created = web.post("/case-groups", {"name": "Village 2"})
    assert created.status_code == 302
    group_page = web.get(created.headers["Location"]).get_data(as_text=True)
    assert "Groupe « Village 2 » créé." in group_page
    assert (
        '<span id="member-count">0</span> dossier dans ce groupe.' in group_page
        and "Ajouter des dossiers depuis Excel" in group_page
    )
    broadcasts = web.get("/broadcasts").get_data(as_text=True)
    assert "Nouvelle diffusion" in broadcasts and "Aucune diffusion à venir." in broadcasts
    composer = web.get("/broadcasts/new").get_data(as_text=True)
    assert "Destinataires" in composer and "Heures calmes : n'envoyer qu'entre" in composer
    inbox = web.get("/inbox").get_data(as_text=True)
    assert "Rien à traiter dans la boîte de réception." in inbox
    dashboard = web.get("/").get_data(as_text=True)
    assert "Les 30 derniers jours (UTC)" in dashboard and "La file d'attente maintenant" in dashboard

    # The choice is the person's: a new login keeps it, whatever the browser says.
    again = login(app, project.admin_email, project.password)
    page = again.get("/inbox", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="fr">' in page


def test_an_unknown_language_changes_nothing_and_a_foreign_next_is_not_followed(project, web):
    r = web.post("/account/language", {"language": "xx", "next": "https://evil.example/"})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    page = web.get("/").get_data(as_text=True)
    assert "There is no &#39;xx&#39; version of the pages." in page and '<html lang="en">' in page


def test_what_participants_read_does_not_follow_the_users_language(project, web, run_jobs):
    from tests.factories import make_contact
    from tests.integration.inbound.inbound_helpers import say

    web.post("/account/language", {"language": "sw"})
    make_contact(project, "+254712000301")
    assert say(project, run_jobs, "+254712000301", "STOP") == [
        "You have been unsubscribed from Alpha messages. Reply START to subscribe again."
    ]
