// Drives a Paved portal with Backstage's own @backstage/catalog-client, over every method
// the client offers, and prints what each returned as one JSON document on stdout.
//
//   PAVED_URL=http://127.0.0.1:8123 PAVED_TOKEN=pvd_... FILE_TARGET=/abs/catalog-info.yaml \
//   OTHER_TARGET=/abs/other.yaml node drive.mjs
import { CatalogClient } from '@backstage/catalog-client';

const base = process.env.PAVED_URL;
const token = process.env.PAVED_TOKEN;
const fileTarget = process.env.FILE_TARGET;
const otherTarget = process.env.OTHER_TARGET;

const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: {
    fetch: (input, init = {}) =>
      fetch(input, {
        ...init,
        headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` },
      }),
  },
});

const names = entities => entities.map(e => e.metadata.name);
const out = {};

async function collect(iterable) {
  const all = [];
  for await (const page of iterable) all.push(...page);
  return all;
}

out.getEntities = names(
  (
    await client.getEntities({
      filter: [{ kind: 'Model' }, { kind: 'Dataset', 'spec.classification': 'pii' }],
      fields: ['kind', 'metadata.name'],
      order: { field: 'metadata.name', order: 'asc' },
    })
  ).items,
);
out.getEntitiesPaged = names(
  (await client.getEntities({ filter: { kind: 'user' }, limit: 3, offset: 2 })).items,
);
out.getEntitiesByRefs = (
  await client.getEntitiesByRefs({
    entityRefs: ['model:default/fraud-scorer', 'component:default/nothing-here', 'group:fraud'],
    fields: ['kind', 'metadata.name'],
  })
).items.map(e => (e ? e.metadata.name : null));

const first = await client.queryEntities({
  filter: { kind: 'user' },
  orderFields: { field: 'metadata.name', order: 'desc' },
  limit: 5,
});
const queried = [...names(first.items)];
let cursor = first.pageInfo.nextCursor;
while (cursor) {
  const page = await client.queryEntities({ cursor, limit: 5 });
  queried.push(...names(page.items));
  cursor = page.pageInfo.nextCursor;
}
out.queryEntities = { totalItems: first.totalItems, names: queried };

const byPredicate = await client.queryEntities({
  query: { $all: [{ kind: 'model' }, { $not: { 'spec.lifecycle': 'deprecated' } }] },
  orderFields: { field: 'metadata.name', order: 'asc' },
  limit: 3,
});
const predicateNames = [...names(byPredicate.items)];
cursor = byPredicate.pageInfo.nextCursor;
while (cursor) {
  const page = await client.queryEntities({ cursor });
  predicateNames.push(...names(page.items));
  cursor = page.pageInfo.nextCursor;
}
out.queryEntitiesByPredicate = { totalItems: byPredicate.totalItems, names: predicateNames };
out.queryEntitiesFullText = names(
  (await client.queryEntities({ fullTextFilter: { term: 'fraud scorer' }, limit: 50 })).items,
);

out.streamEntities = (await collect(client.streamEntities({ filter: { kind: 'group' } }))).length;
out.getEntityByRef = (await client.getEntityByRef('model:default/fraud-scorer'))?.spec;
out.getEntityByRefMissing = (await client.getEntityByRef('model:default/nope')) ?? null;
out.getEntityByName = (
  await client.getEntityByName({ kind: 'Group', namespace: 'default', name: 'fraud' })
)?.metadata.name;
const ancestors = await client.getEntityAncestors({ entityRef: 'user:default/alice' });
out.getEntityAncestors = {
  rootEntityRef: ancestors.rootEntityRef,
  refs: ancestors.items.map(i => `${i.entity.kind.toLowerCase()}:default/${i.entity.metadata.name}`),
};
out.getEntityFacets = (
  await client.getEntityFacets({ facets: ['kind', 'spec.type'], filter: { kind: 'model' } })
).facets;
await client.refreshEntity('group:default/fraud');
out.refreshEntity = 'ok';

out.getLocations = (await client.getLocations()).items.map(l => l.type);
const dry = await client.addLocation({ type: 'file', target: fileTarget, dryRun: true });
out.addLocationDryRun = { exists: dry.exists, entities: names(dry.entities) };
const added = await client.addLocation({ type: 'file', target: fileTarget });
out.addLocation = { target: added.location.target, entityRef: added.location.entityRef };
out.getLocationById = (await client.getLocationById(added.location.id))?.target;
out.getLocationByRef = (await client.getLocationByRef(`file:${fileTarget}`))?.id === added.location.id;
out.getLocationByEntity = (await client.getLocationByEntity('component:default/client-made'))?.id ===
  added.location.id;
out.queryLocations = (await client.queryLocations({ query: { type: 'file' } })).totalItems;
out.streamLocations = (await collect(client.streamLocations())).length;
const updated = await client.updateLocation(added.location.id, { type: 'file', target: otherTarget });
out.updateLocation = updated.target;
const moved = await client.getEntityByRef('component:default/client-moved');
out.afterUpdate = moved?.metadata.name ?? null;
out.removeEntityByUid = await client
  .removeEntityByUid(moved.metadata.uid)
  .then(async () => (await client.getEntityByRef('component:default/client-moved')) ?? null);
await client.removeLocationById(added.location.id);
out.removeLocationById = (await client.getLocationById(added.location.id)) ?? null;

const component = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'checked' },
  spec: { type: 'service', lifecycle: 'production', owner: 'fraud' },
};
out.validateEntity = await client.validateEntity(component, `file:${fileTarget}`);
const invalid = await client.validateEntity(
  { ...component, metadata: { name: 'not valid!' } },
  `file:${fileTarget}`,
);
out.validateEntityInvalid = { valid: invalid.valid, errors: invalid.errors.map(e => e.name) };
const analyzed = await client.analyzeLocation({ location: { type: 'file', target: otherTarget } });
out.analyzeLocation = analyzed.existingEntityFiles.map(f => [f.entity.metadata.name, f.isRegistered]);

try {
  await client.addLocation({ type: 'file', target: '/etc/passwd' });
  out.addLocationOutside = 'accepted';
} catch (error) {
  out.addLocationOutside = { name: error.name, status: error.response?.status, cause: error.cause?.name };
}

process.stdout.write(JSON.stringify(out));
