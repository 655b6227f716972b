"""Collections through huggingface_hub's own collection methods, unmodified (spec wave2-apis §4)."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import ALICE_READ_TOKEN, ORG, auth, unique_name


def _status(exc_info) -> int:
    return exc_info.value.response.status_code


def test_every_collection_method(api, bob_api, repo_id, live_hub):
    dataset = f"alice/{unique_name('data')}"
    api.create_repo(dataset, repo_type="dataset")
    space = f"alice/{unique_name('space')}"
    api.create_repo(space, repo_type="space", space_sdk="static")
    title = unique_name("Favourite models")
    created = api.create_collection(title, description="The ones I use", private=False)
    assert created.slug.startswith("alice/favourite-models-") and created.title == title
    assert created.owner["name"] == "alice" and created.items == [] and created.private is False
    assert created.url == f"{live_hub.url}/collections/{created.slug}"
    again = api.create_collection(title, exists_ok=True)  # the 409 body names the slug
    assert again.slug == created.slug
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_collection(title)
    assert _status(exc) == 409

    slug = created.slug
    api.add_collection_item(slug, repo_id, "model", note="The **first** one")
    api.add_collection_item(slug, dataset, "dataset")
    other = api.create_collection(unique_name("Nested"))
    api.add_collection_item(slug, other.slug, "collection")
    api.add_collection_item(slug, "2307.09288", "paper")
    collection = api.add_collection_item(slug, space, "space", note="a space")
    assert [(i.item_type, i.item_id, i.position) for i in collection.items] == [
        ("model", repo_id, 0), ("dataset", dataset, 1), ("collection", other.slug, 2), ("paper", "2307.09288", 3),
        ("space", space, 4)]
    assert collection.items[0].note == "The **first** one"
    # Already there: 409, or the collection with exists_ok; a missing repo or a wrong type: 404.
    with pytest.raises(HfHubHTTPError) as exc:
        api.add_collection_item(slug, repo_id, "model")
    assert _status(exc) == 409
    assert len(api.add_collection_item(slug, repo_id, "model", exists_ok=True).items) == 5
    for item_id, item_type in (("alice/no-such-repo", "model"), (dataset, "model"), ("not-a-paper", "paper")):
        with pytest.raises(HfHubHTTPError) as exc:
            api.add_collection_item(slug, item_id, item_type)
        assert _status(exc) == 404, (item_id, item_type)

    # Move, annotate, delete: positions are renumbered.
    items = api.get_collection(slug).items
    api.update_collection_item(slug, items[4].item_object_id, position=0)
    api.update_collection_item(slug, items[1].item_object_id, note="Updated note")
    api.delete_collection_item(slug, items[3].item_object_id)
    api.delete_collection_item(slug, items[3].item_object_id, missing_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.delete_collection_item(slug, items[3].item_object_id)
    collection = api.get_collection(slug)
    assert [(i.item_id, i.position) for i in collection.items] == [
        (space, 0), (repo_id, 1), (dataset, 2), (other.slug, 3)]
    assert collection.items[2].note == "Updated note"

    # Rename: a new slug, the same id; the old slug still resolves and answers the new one.
    renamed = api.update_collection_metadata(slug, title=title + " renamed", description="new", theme="green",
                                             private=True)
    assert renamed.slug != slug and renamed.slug.endswith(slug[-24:])
    assert (renamed.description, renamed.theme, renamed.private) == ("new", "green", True)
    assert api.get_collection(slug).slug == renamed.slug

    # Listing: by owner and by item, entries without their own position, at most 4 items each.
    listed = list(api.list_collections(owner="alice", item=f"datasets/{dataset}"))
    assert [c.slug for c in listed] == [renamed.slug] and len(listed[0].items) == 4
    assert {c.slug for c in api.list_collections(owner="alice", limit=500)} >= {renamed.slug, other.slug}
    assert list(api.list_collections(item=f"models/{repo_id}", limit=1))[0].slug == renamed.slug

    # Private: another user neither gets nor lists it, nor changes it.
    with pytest.raises(HfHubHTTPError) as exc:
        bob_api.get_collection(slug)
    assert _status(exc) == 404
    assert renamed.slug not in {c.slug for c in bob_api.list_collections(owner="alice", limit=500)}
    with pytest.raises(HfHubHTTPError) as exc:
        bob_api.delete_collection(slug)
    assert _status(exc) == 404
    api.update_collection_metadata(slug, private=False)
    assert bob_api.get_collection(slug).slug == renamed.slug
    with pytest.raises(HfHubHTTPError) as exc:
        bob_api.add_collection_item(slug, repo_id, "model", exists_ok=False)
    assert _status(exc) == 403

    # Deleting: gone, a second delete fails, missing_ok is silent.
    api.delete_collection(slug)
    with pytest.raises(HfHubHTTPError) as exc:
        api.get_collection(slug)
    assert _status(exc) == 404
    with pytest.raises(HfHubHTTPError):
        api.delete_collection(slug)
    api.delete_collection(slug, missing_ok=True)
    api.delete_collection(other.slug)


def test_org_collections_and_read_tokens(api, bob_api, live_hub, repo_id):
    title = unique_name("Team picks")
    collection = api.create_collection(title, namespace=ORG, private=True)
    assert collection.slug.startswith(f"{ORG}/") and collection.owner["type"] == "org"
    assert api.get_collection(collection.slug).private is True
    with pytest.raises(HfHubHTTPError) as exc:  # bob is not a member
        bob_api.create_collection(unique_name("x"), namespace=ORG)
    assert _status(exc) == 403
    with pytest.raises(HfHubHTTPError) as exc:
        bob_api.get_collection(collection.slug)
    assert _status(exc) == 404
    reader = HfApi(endpoint=live_hub.url, token=ALICE_READ_TOKEN)
    assert reader.get_collection(collection.slug).slug == collection.slug  # reads ...
    with pytest.raises(HfHubHTTPError) as exc:  # ... but a read token changes nothing
        reader.add_collection_item(collection.slug, repo_id, "model")
    assert _status(exc) == 403
    with pytest.raises(HfHubHTTPError) as exc:
        reader.create_collection(unique_name("x"))
    assert _status(exc) == 403
    api.delete_collection(collection.slug)


def test_private_repos_in_public_collections_stay_hidden(api, bob_api, http):
    secret = f"alice/{unique_name('secret')}"
    api.create_repo(secret, private=True)
    public = f"alice/{unique_name('public')}"
    api.create_repo(public)
    hidden = api.create_collection(unique_name("Hidden"), private=True)
    collection = api.create_collection(unique_name("Mixed"))
    for item, kind in ((public, "model"), (secret, "model"), (hidden.slug, "collection")):
        api.add_collection_item(collection.slug, item, kind)
    assert len(api.get_collection(collection.slug).items) == 3  # the owner sees everything
    seen = bob_api.get_collection(collection.slug)
    assert [(i.item_id, i.position) for i in seen.items] == [(public, 0)]
    for response in (http.get(f"/api/collections/{collection.slug}"), http.get("/api/collections?owner=alice&limit=500"),
                     http.get(f"/collections/{collection.slug}"), http.get("/alice")):
        assert response.status_code == 200, (response.url, response.text[-2000:])
        assert secret not in response.text and hidden.slug not in response.text
    # Naming the private repo as an item filter finds nothing; bob cannot add it anywhere.
    assert http.get("/api/collections", params={"item": f"models/{secret}"}).json() == []
    mine = bob_api.create_collection(unique_name("Bob's"))
    with pytest.raises(HfHubHTTPError) as exc:
        bob_api.add_collection_item(mine.slug, secret, "model")
    assert _status(exc) == 404
    # Bad input: 4xx with the Hub's error code, never a 5xx.
    for body in ({"item": "x"}, {"item": {"id": public, "type": "bucket"}}, {"item": {"id": public, "type": "model"},
                                                                             "note": 5}, []):
        response = http.post(f"/api/collections/{mine.slug}/items", json=body, headers=auth(bob_api.token))
        assert response.status_code == 400 and response.headers["X-Error-Code"] == "BadRequest", body
    for body in ({"title": ""}, {"title": "x" * 61}, {"title": "ok", "description": "d" * 151}):
        response = http.post("/api/collections", json=body, headers=auth(bob_api.token))
        assert response.status_code == 400, body
    response = http.patch(f"/api/collections/{mine.slug}", json={"theme": "neon"}, headers=auth(bob_api.token))
    assert response.status_code == 400
    assert http.get("/api/collections/alice/nothing-0123456789abcdef01234567").status_code == 404
    assert http.post("/api/collections", json={"title": "x"}).status_code == 401
    for collection_slug in (collection.slug, hidden.slug):
        api.delete_collection(collection_slug)
    bob_api.delete_collection(mine.slug)
