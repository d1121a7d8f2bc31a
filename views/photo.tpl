% from photoflow import describe, urls
% rebase('base.tpl', title=title, ctx=ctx, body_class='photo-page')
% back = ctx.url(f'/album/{album.id}') if album is not None and ctx.shared is None else (ctx.prefix or '/')
% query = f'?album={album.id}' if album is not None and ctx.shared is None else ''
% original = files.get('original') or files.get('raw')
<div class="viewer" data-back="{{ctx.root}}{{back}}" data-newer="{{ctx.root + ctx.url(f'/photo/{newer}') + query if newer else ''}}" data-older="{{ctx.root + ctx.url(f'/photo/{older}') + query if older else ''}}">
  <div class="stage">
    <a class="close" href="{{ctx.root}}{{back}}" title="Back to the grid (Esc)" aria-label="Back to the grid">×</a>
% if newer:
    <a class="step newer" href="{{ctx.root}}{{ctx.url(f'/photo/{newer}')}}{{query}}" title="Previous (←)" aria-label="Previous photo">‹</a>
% end
% if older:
    <a class="step older" href="{{ctx.root}}{{ctx.url(f'/photo/{older}')}}{{query}}" title="Next (→)" aria-label="Next photo">›</a>
% end
    <img class="large" src="{{ctx.root}}{{ctx.url(urls.derivative(photo.id, photo.sha256, 'preview'))}}" width="{{photo.width}}" height="{{photo.height}}" alt="{{photo.title or photo.file_name}}">
  </div>
  <aside class="info" aria-label="About this photo">
    <h1 class="photo-title">{{photo.title or photo.file_name}}</h1>
% if photo.description:
    <p class="description">{{photo.description}}</p>
% end
% labels = describe.labels(photo)
% if labels or photo.rating is not None:
    <p class="judgement">
%   if photo.rating is not None:
      <span class="stars {{'rejected' if photo.rating < 0 else ''}}" title="Rating">{{describe.stars(photo.rating)}}</span>
%   end
%   for name, colour in labels:
      <span class="label-dot" data-colour="{{name}}" title="{{name}} label">{{name}}</span>
%   end
    </p>
% end
    <dl class="facts">
% for fact in describe.facts(photo, original.size if original else 0):
      <dt>{{fact.label}}</dt>
%   if fact.link:
      <dd><a href="{{fact.link}}" rel="noopener noreferrer" target="_blank">{{fact.value}}</a></dd>
%   else:
      <dd>{{fact.value}}</dd>
%   end
% end
    </dl>
% if photo.keywords:
    <ul class="chips" aria-label="Keywords">
%   for word in photo.keywords:
      <li>{{word}}</li>
%   end
    </ul>
% end
    <h2>Download</h2>
    <ul class="downloads">
% for role, label in (('original', 'Picture'), ('raw', 'RAW'), ('sidecar', 'Sidecar')):
%   if role in files:
      <li><a href="{{ctx.root}}{{ctx.url(f'/photo/{photo.id}/file/{role}')}}" download="{{files[role].original_name}}" data-role="{{role}}">{{label}}: {{files[role].original_name}}</a> <span class="muted">{{describe.file_size(files[role].size)}}</span></li>
%   end
% end
    </ul>
% if albums_in:
    <h2>Albums</h2>
    <ul class="chips">
%   for a in albums_in:
      <li><a href="{{ctx.root}}{{ctx.url(f'/album/{a.id}')}}">{{a.title}}</a></li>
%   end
    </ul>
% end
% if ctx.viewer.is_member and ctx.shared is None:
    <details class="edit">
      <summary>Edit</summary>
      <form method="post" action="{{ctx.root}}/photo/{{photo.id}}" class="stack">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="next" value="/photo/{{photo.id}}{{query}}">
        <input type="hidden" name="albums_sent" value="1">
        <label>Title <input name="title" value="{{photo.title}}" maxlength="{{limits.MAX_PHOTO_TITLE}}"></label>
        <label>Description <textarea name="description" rows="3" maxlength="{{limits.MAX_DESCRIPTION}}">{{photo.description}}</textarea></label>
%   if all_albums:
        <fieldset class="albums-choice"><legend>Albums</legend>
%     ids = {a.id for a in albums_in}
%     for a in all_albums:
          <label class="check"><input type="checkbox" name="album" value="{{a.id}}" {{'checked' if a.id in ids else ''}}> {{a.title}}</label>
%     end
        </fieldset>
%   end
        <button type="submit">Save</button>
      </form>
%   if album is not None:
      <form method="post" action="{{ctx.root}}/album/{{album.id}}" class="row">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="action" value="cover">
        <input type="hidden" name="photo" value="{{photo.id}}">
        <input type="hidden" name="next" value="/photo/{{photo.id}}{{query}}">
        <button type="submit">Use as the album's cover</button>
      </form>
      <form method="post" action="{{ctx.root}}/album/{{album.id}}" class="row">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="action" value="remove">
        <input type="hidden" name="photo" value="{{photo.id}}">
        <input type="hidden" name="next" value="{{ctx.url(f'/photo/{older}') + query if older else ctx.url(f'/album/{album.id}')}}">
        <button type="submit">Remove from “{{album.title}}”</button>
      </form>
%   end
%   if may_delete:
      <form method="post" action="{{ctx.root}}/photo/{{photo.id}}" class="row" data-confirm="Delete this photo and all its files for good?">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="action" value="delete">
        <input type="hidden" name="after" value="{{ctx.url(f'/photo/{older}') + query if older else back}}">
        <button type="submit" class="danger">Delete photo</button>
      </form>
%   end
    </details>
% end
% if metadata:
    <details class="all-tags">
      <summary>All metadata ({{len(metadata)}} tags)</summary>
      <table>
%   for key, value in metadata:
        <tr><th scope="row">{{key}}</th><td>{{value}}</td></tr>
%   end
      </table>
    </details>
% end
  </aside>
</div>
<script src="{{ctx.root}}/static/js/photo.js" defer></script>
