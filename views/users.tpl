% rebase('base.tpl', title=title, ctx=ctx)
<section class="narrow">
  <h1>Users</h1>
% if error:
  <p class="error" role="alert">{{error}}</p>
% end
  <table class="users">
    <thead><tr><th>Name</th><th>Role</th><th>Actions</th></tr></thead>
    <tbody>
% for user in users:
      <tr>
        <td>{{user.name}}{{' (you)' if user.id == ctx.viewer.user.id else ''}}</td>
        <td>{{'Administrator' if user.is_admin else 'Member'}}</td>
        <td class="user-actions">
          <form method="post" action="{{ctx.root}}/users/{{user.id}}/admin">
            <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
            <input type="hidden" name="admin" value="{{'0' if user.is_admin else '1'}}">
            <button type="submit" class="small">{{'Make member' if user.is_admin else 'Make admin'}}</button>
          </form>
          <details class="menu">
            <summary class="button small quiet">Reset password</summary>
            <form method="post" action="{{ctx.root}}/users/{{user.id}}/password" class="menu-body stack">
              <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
              <label>New password <input name="password" type="password" autocomplete="new-password" required minlength="8"></label>
              <button type="submit" class="small">Set</button>
            </form>
          </details>
%   if user.id != ctx.viewer.user.id:
          <form method="post" action="{{ctx.root}}/users/{{user.id}}/delete" data-confirm="Delete {{user.name}}? Their photos and albums become yours.">
            <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
            <button type="submit" class="small danger">Delete</button>
          </form>
%   end
        </td>
      </tr>
% end
    </tbody>
  </table>
  <h2>Add someone</h2>
  <form method="post" action="{{ctx.root}}/users" class="stack">
    <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
    <label>Name <input name="name" required maxlength="{{limits.MAX_USER_NAME}}" autocomplete="off" autocapitalize="none"></label>
    <label>Password <input name="password" type="password" required minlength="8" autocomplete="new-password"></label>
    <label class="check"><input type="checkbox" name="admin" value="1"> Administrator</label>
    <button type="submit">Create account</button>
  </form>
</section>
