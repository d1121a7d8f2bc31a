<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="light dark">
<meta name="csrf-token" content="{{ctx.csrf_token}}">
<meta name="base" content="{{ctx.root}}{{ctx.prefix}}">
<meta name="share" content="{{ctx.prefix}}">
<meta name="root" content="{{ctx.root}}">
<title>{{title}} · Photoflow</title>
<link rel="stylesheet" href="{{ctx.root}}/static/css/photoflow.css">
<link rel="icon" href="{{ctx.root}}/static/img/icon.svg" type="image/svg+xml">
<script src="{{ctx.root}}/static/js/common.js" defer></script>
% for href in get('feeds', []):
<link rel="alternate" type="application/atom+xml" href="{{ctx.root}}{{href}}">
% end
</head>
<body class="{{get('body_class', '')}}">
<header class="bar">
  <a class="brand" href="{{ctx.root}}{{ctx.prefix or '/'}}"><img src="{{ctx.root}}/static/img/icon.svg" alt="" width="28" height="28"><span>Photoflow</span></a>
  <nav class="tabs" aria-label="Sections">
% if ctx.shared is None:
    <a href="{{ctx.root}}/" class="{{'on' if get('tab') == 'photos' else ''}}">Photos</a>
    <a href="{{ctx.root}}/albums" class="{{'on' if get('tab') == 'albums' else ''}}">Albums</a>
%   if ctx.viewer.is_member:
    <a href="{{ctx.root}}/upload" class="{{'on' if get('tab') == 'upload' else ''}}">Upload</a>
%   end
% else:
    <span class="shared-note">Shared album</span>
% end
  </nav>
  <div class="who">
% if ctx.viewer.is_member:
    <details class="menu">
      <summary aria-label="Account menu"><span class="avatar">{{ctx.viewer.user.name[:1].upper()}}</span></summary>
      <div class="menu-body">
        <p class="menu-name">{{ctx.viewer.user.name}}</p>
        <a href="{{ctx.root}}/account">Your account</a>
%   if ctx.viewer.is_admin:
        <a href="{{ctx.root}}/users">Users</a>
%   end
        <form method="post" action="{{ctx.root}}/logout"><input type="hidden" name="csrf" value="{{ctx.csrf_token}}"><button type="submit" class="link">Log out</button></form>
      </div>
    </details>
% elif ctx.shared is None:
    <a class="button quiet" href="{{ctx.root}}/login">Log in</a>
% end
  </div>
</header>
% if ctx.flash:
<p class="flash" role="status">{{ctx.flash}}</p>
% end
<main id="main">
{{!base}}
</main>
</body>
</html>
